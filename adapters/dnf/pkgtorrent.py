# pkgtorrent dnf 4 plugin: fetch the packages of a transaction from peers
# over BitTorrent (pkgtorrent-get), as one batch, into dnf's package cache,
# before dnf downloads them.
#
# dnf 4 has no download hook. The plugin wraps base.download_packages in
# config(): the wrapper runs first, then calls the original. That covers
# every path that downloads packages (install/upgrade, --downloadonly, and
# `dnf download` from dnf-plugins-core, which never runs resolved()). dnf's
# own download (librepo) then finds each prefetched file at pkg.localPkg()
# with the metadata's checksum and size, and skips it ("Already
# downloaded"); whatever is missing or wrong it downloads as always.
#
# Install: this file and pkgtorrent_batch.py in dnf's plugin directory
# (/usr/lib/python3/dist-packages/dnf-plugins/), pkgtorrent.conf in
# /etc/dnf/plugins/.

import logging
import os
import sys

import dnf
import dnf.util
import libdnf.conf

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)
import pkgtorrent_batch  # noqa: E402 (shipped beside this file)

logger = logging.getLogger('dnf')


def _one_line(e):
    return ' '.join(str(e).split())


class PkgTorrent(dnf.Plugin):
    """Prefetches the packages dnf is about to download through pkgtorrent."""

    name = 'pkgtorrent'

    def __init__(self, base, cli):
        super(PkgTorrent, self).__init__(base, cli)
        self._parser = None

    @classmethod
    def read_config(cls, conf):
        """dnf's read_config, except that a file dnf cannot parse (or an
        enabled value that is no boolean) logs one line and disables the
        plugin instead of stopping dnf: dnf calls this before it loads the
        plugin (to check enabled=) and raises ConfigError out of it."""
        try:
            parser = super(PkgTorrent, cls).read_config(conf)
            if parser.has_section('main') and parser.has_option('main', 'enabled'):
                parser.getboolean('main', 'enabled')
            return parser
        except Exception as e:
            if not cls._config_error_logged:
                cls._config_error_logged = True
                logger.warning('pkgtorrent: plugin disabled: %s', _one_line(e))
            parser = libdnf.conf.ConfigParser()
            parser.addSection('main')
            parser.setValue('main', 'enabled', '0')
            return parser

    _config_error_logged = False

    def config(self):
        # dnf itself skips this plugin when [main] enabled=0, and when
        # read_config above finds the file malformed.
        try:
            self._parser = self.read_config(self.base.conf)
            p = self._parser
            if p.has_section('main') and p.has_option('main', 'enabled') and not p.getboolean('main', 'enabled'):
                return
            pkgtorrent_batch.Settings(self._get).check()
        except Exception as e:
            if not self._config_error_logged:
                type(self)._config_error_logged = True
                logger.warning('pkgtorrent: plugin disabled: %s', _one_line(e))
            return
        original = self.base.download_packages
        plugin = self

        def download_packages(pkglist, *args, **kwargs):
            try:
                plugin.prefetch(pkglist)
            except Exception as e:  # never make a transaction fail
                logger.warning('pkgtorrent: %s; dnf downloads the packages itself', e)
            return original(pkglist, *args, **kwargs)

        self.base.download_packages = download_packages

    def _get(self, section, key):
        p = self._parser
        if p is None or not p.has_section(section) or not p.has_option(section, key):
            return None
        return p.get(section, key)

    def _subst(self, value):
        try:
            import libdnf.conf
            return libdnf.conf.ConfigParser.substitute(value, self.base.conf.substitutions)
        except Exception:
            return value

    def prefetch(self, pkglist):
        """Fetches the remote, not yet cached packages of pkglist."""
        if self.base.conf.cacheonly:
            return  # no network wanted: dnf uses its cache only
        settings = pkgtorrent_batch.Settings(self._get, self._subst)
        packages = [p for p in (self._package(pkg) for pkg in self._remote(pkglist)) if p]
        if not packages:
            return
        conf = self.base.conf
        env = pkgtorrent_batch.proxy_env(conf.proxy, conf.proxy_username, conf.proxy_password)
        pkgtorrent_batch.prefetch(settings, packages, logger.info, logger.warning, env)

    def _remote(self, pkglist):
        """The packages dnf will download: not from a local (file://) repo,
        not already cached and valid, not to be fetched as a delta RPM."""
        deltas = None
        try:
            import dnf.drpm
            deltas = dnf.drpm.DeltaInfo(self.base.sack.query().installed(), None,
                                        self.base.conf.deltarpm_percentage)
        except Exception:
            deltas = None
        for pkg in pkglist:
            if pkg._from_cmdline or pkg._from_system:
                continue
            if pkg.remote_location(schemes=('http', 'https')) is None:
                continue  # a local or non-HTTP repository: dnf's own
            local = pkg.localPkg()
            if os.path.exists(local):
                try:
                    if pkg.verifyLocalPkg():
                        continue
                except Exception:
                    pass
            if deltas is not None:
                try:
                    if deltas.delta_factory(pkg, None) is not None:
                        continue  # dnf applies a delta RPM for this one
                except Exception:
                    pass
            yield pkg

    def _package(self, pkg):
        repo = pkg.repo
        urls = []
        try:
            urls.extend(repo._repo.getMirrors() or [])
        except Exception:
            pass
        urls.extend(repo.baseurl or [])
        location = pkg.location
        if '://' in location:
            url = location
        elif pkg.baseurl:
            # xml:base of the package overrides the repository's URLs.
            url = pkg.baseurl.rstrip('/') + '/' + location.lstrip('/')
            urls = [pkg.baseurl]
        else:
            url = pkg.remote_location(schemes=('http', 'https'))
        ctype, csum = pkg.returnIdSum()
        # dnf creates the package directory just before it downloads.
        dnf.util.ensure_dir(os.path.dirname(pkg.localPkg()))
        return pkgtorrent_batch.Package(url, pkg.localPkg(), ctype, csum, repo.id, urls)
