# A yum 3 transaction for the adapters' conformance table (go test
# ./adapters/dnf/, TestScenarios): the stand-in conduit and packages of
# test_pkgtorrent_yum.py, driven as yum drives a plugin. Python 2.6+/3.
#
#   yum_standin.py PLUGINCONF REPO_URL CACHE INSTALLED
#
# It reads the repository's metadata (repomd.xml, primary.xml.gz) from
# REPO_URL, parses PLUGINCONF as yum 3 does (a file it cannot parse stops
# yum before any plugin loads; the plugin loads with enabled = 1 only), runs
# the plugin's predownload hook over every package, then does what yum's
# downloadPkgs does: a package whose cached copy verifies is used, the
# others are downloaded from the repository and must verify. "Installing"
# copies each verified package into INSTALLED. The plugin comes from
# PT_TEST_PLUGIN_DIR when set (the installed one), else from this
# directory. Exit status 1 when the transaction fails.

import gzip
import os
import shutil
import sys
import xml.etree.ElementTree as ET

try:
    from urllib.request import Request, urlopen
except ImportError:
    from urllib2 import Request, urlopen
try:
    from configparser import RawConfigParser, Error as ConfigError
except ImportError:
    from ConfigParser import RawConfigParser, Error as ConfigError

import test_pkgtorrent_yum as standin

USER_AGENT = 'urlgrabber/3.9.1 yum/3.4.3'
REPO_NS = '{http://linux.duke.edu/metadata/repo}'
COMMON_NS = '{http://linux.duke.edu/metadata/common}'


def fetch(url):
    return urlopen(Request(url, headers={'User-Agent': USER_AGENT})).read()


def packages(repo, cache):
    repomd = ET.fromstring(fetch(repo.urls[0] + 'repodata/repomd.xml'))
    for data in repomd.findall(REPO_NS + 'data'):
        if data.get('type') == 'primary':
            href = data.find(REPO_NS + 'location').get('href')
    primary = ET.fromstring(gzip.GzipFile(fileobj=_BytesIO(fetch(repo.urls[0] + href))).read())
    pkgs = []
    for p in primary.findall(COMMON_NS + 'package'):
        csum = p.find(COMMON_NS + 'checksum')
        rel = p.find(COMMON_NS + 'location').get('href')
        pkgs.append(standin.StandInPackage(repo, rel, cache, csum.get('type'), csum.text))
    return pkgs


def _BytesIO(b):
    import io
    return io.BytesIO(b)


def main(conf_path, repo_url, cache, installed):
    parser = RawConfigParser()
    try:
        parser.read(conf_path)
    except ConfigError as e:
        print('yum: cannot parse %s: %s' % (conf_path, e))
        return 1
    conf = dict((s, dict(parser.items(s))) for s in parser.sections())
    repo = standin.StandInRepo('ptrepo', [repo_url])
    pkgs = packages(repo, cache)
    if conf.get('main', {}).get('enabled') == '1':
        conduit = standin.StandInConduit(pkgs, conf)
        standin.pkgtorrent.predownload_hook(conduit)
        for _, msg in conduit.messages:
            print(msg)
    for po in pkgs:
        local = po.localPkg()
        if os.path.exists(local) and po.verifyLocalPkg():
            print('using local copy of %s' % po.relativepath)
        else:
            if not os.path.isdir(os.path.dirname(local)):
                os.makedirs(os.path.dirname(local))
            f = open(local, 'wb')
            try:
                f.write(fetch(po.remote_url))
            finally:
                f.close()
            print('downloaded %s' % po.relativepath)
            if not po.verifyLocalPkg():
                os.remove(local)
                print('error: %s: checksum does not match' % po.relativepath)
                return 1
    if not os.path.isdir(installed):
        os.makedirs(installed)
    for po in pkgs:
        shutil.copy(po.localPkg(), os.path.join(installed, os.path.basename(po.relativepath)))
    return 0


if __name__ == '__main__':
    sys.exit(main(*sys.argv[1:]))
