# pkgtorrent yum 3 plugin: fetch the packages of a transaction from peers
# over BitTorrent (pkgtorrent-get), as one batch, into yum's package cache,
# before yum downloads them.
#
# yum runs predownload_hook(conduit) at the start of downloadPkgs, before
# it checks which packages are already local. The hook writes each file
# complete and verified to po.localPkg(); yum's own check (verifyPkg ->
# po.verifyLocalPkg, the metadata checksum) then accepts it ("using local
# copy of ...") and downloads only what is missing or wrong.
#
# Python 2.6/2.7 syntax. Install: this file and pkgtorrent_batch.py in
# /usr/lib/yum-plugins/, pkgtorrent.conf in /etc/yum/pluginconf.d/ (yum
# loads it only with plugins=1 in yum.conf and enabled=1 there).

import os
import sys

from yum.plugins import TYPE_CORE

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)
import pkgtorrent_batch  # noqa: E402 (shipped beside this file)

requires_api_version = '2.5'
plugin_type = (TYPE_CORE,)


def _settings(conduit):
    def get(section, key):
        try:
            return conduit.confString(section, key, default=None)
        except Exception:
            return None

    def subst(value):
        try:
            from yum.parser import varReplace
            return varReplace(value, conduit.getConf().yumvar)
        except Exception:
            return value
    return pkgtorrent_batch.Settings(get, subst)


def _remote(pkglist):
    """The packages yum will download: not local (command line) packages,
    not already cached and valid."""
    for po in pkglist:
        if getattr(po, 'pkgtype', None) == 'local':
            continue
        local = po.localPkg()
        if os.path.exists(local):
            try:
                if po.verifyLocalPkg():
                    continue
            except Exception:
                pass
        yield po


def _package(po):
    repo = po.repo
    urls = list(getattr(repo, 'urls', None) or [])
    relative = po.relativepath
    basepath = getattr(po, 'basepath', None)
    if basepath:
        # xml:base of the package overrides the repository's URLs.
        url = basepath.rstrip('/') + '/' + relative.lstrip('/')
        urls = [basepath]
    else:
        url = getattr(po, 'remote_url', None)
        if not url and urls:
            url = urls[0].rstrip('/') + '/' + relative.lstrip('/')
    if not url:
        return None
    local = po.localPkg()
    d = os.path.dirname(local)
    if not os.path.isdir(d):
        os.makedirs(d)
    ctype, csum = po.returnIdSum()
    return pkgtorrent_batch.Package(url, local, ctype, csum, repo.id, urls)


def predownload_hook(conduit):
    """Prefetches the packages yum is about to download. Never raises."""
    def info(msg):
        conduit.info(2, msg)

    def warn(msg):
        conduit.info(1, msg)
    try:
        if getattr(conduit.getConf(), 'cache', 0):
            return  # yum -C: cache only, no network
        settings = _settings(conduit)
        settings.check()  # a malformed number: one line, yum downloads
        packages = []
        for po in _remote(conduit.getDownloadPackages()):
            p = _package(po)
            if p is not None:
                packages.append(p)
        if not packages:
            return
        conf = conduit.getConf()
        env = pkgtorrent_batch.proxy_env(getattr(conf, 'proxy', None),
                                         getattr(conf, 'proxy_username', None),
                                         getattr(conf, 'proxy_password', None))
        pkgtorrent_batch.prefetch(settings, packages, info, warn, env)
    except Exception:
        e = sys.exc_info()[1]
        warn('pkgtorrent: %s; yum downloads the packages itself' % e)
