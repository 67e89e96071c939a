# Tests of the yum 3 plugin against a stand-in for yum (Python 2.6+/3
# syntax). yum 3 cannot be installed here; the stand-ins follow yum's
# documented plugin API (yum/plugins.py, yum/packages.py of yum 3.4):
#
#   StandInConduit.getDownloadPackages()  DownloadPluginConduit.getDownloadPackages()
#   StandInConduit.confString(s, o, d)    PluginConduit.confString(section, opt, default=None)
#   StandInConduit.getConf()              PluginConduit.getConf() (yum.config.YumConf:
#                                         yumvar, cache (-C), proxy, proxy_username, proxy_password)
#   StandInConduit.info(level, msg)       PluginConduit.info(level, msg)
#   StandInPackage.localPkg()             YumAvailablePackage.localPkg()
#   StandInPackage.verifyLocalPkg()       YumAvailablePackage.verifyLocalPkg()
#                                         (checksum of the local file == metadata)
#   StandInPackage.returnIdSum()          YumAvailablePackage.returnIdSum() -> (type, hex)
#   StandInPackage.remote_url, .relativepath, .basepath, .pkgtype, .repo.id, .repo.urls
#   yum.plugins.TYPE_CORE, yum.parser.varReplace(raw, vars)
#
# After the hook, yum's downloadPkgs checks each package with
# verifyPkg(local, po) -> po.verifyLocalPkg() and skips those that pass;
# the tests check exactly that on the files the hook placed.
#
# With PT_TEST_GET (pkgtorrent-get), PT_TEST_SERVICE (a service whose tree
# holds the repository at el/) and PT_TEST_REPO (that repository's
# directory) set, as go test ./adapters/dnf/ does, the hook runs the real
# pkgtorrent-get against the real service; without them those tests skip.

import hashlib
import os
import shutil
import sys
import tempfile
import types
import unittest


def _install_yum_stand_in():
    yum = types.ModuleType('yum')
    plugins = types.ModuleType('yum.plugins')
    plugins.TYPE_CORE = 0
    parser = types.ModuleType('yum.parser')

    def varReplace(raw, vars):
        for k, v in vars.items():
            raw = raw.replace('$' + k, v)
        return raw
    parser.varReplace = varReplace
    yum.plugins = plugins
    yum.parser = parser
    sys.modules['yum'] = yum
    sys.modules['yum.plugins'] = plugins
    sys.modules['yum.parser'] = parser


_install_yum_stand_in()
# PT_TEST_PLUGIN_DIR: the plugin as installed (the yum-plugins directory of
# an installed yum-plugin-pkgtorrent), else the checkout's.
_plugin_dir = os.environ.get('PT_TEST_PLUGIN_DIR')
if _plugin_dir:
    sys.path.insert(0, _plugin_dir)
import pkgtorrent  # noqa: E402 (the yum plugin)


class StandInRepo(object):
    def __init__(self, id, urls):
        self.id = id
        self.urls = urls


class StandInPackage(object):
    def __init__(self, repo, relativepath, cachedir, checksum_type, checksum, pkgtype=None):
        self.repo = repo
        self.relativepath = relativepath
        self.basepath = None
        self.pkgtype = pkgtype
        self.remote_url = repo.urls[0].rstrip('/') + '/' + relativepath
        self._local = os.path.join(cachedir, repo.id, 'packages', os.path.basename(relativepath))
        self._sum = (checksum_type, checksum)

    def localPkg(self):
        return self._local

    def returnIdSum(self):
        return self._sum

    def verifyLocalPkg(self):
        h = hashlib.new(self._sum[0])
        f = open(self._local, 'rb')
        try:
            h.update(f.read())
        finally:
            f.close()
        return h.hexdigest() == self._sum[1]


class StandInConf(object):
    def __init__(self):
        self.yumvar = {'releasever': '6', 'basearch': 'x86_64'}
        self.cache = 0
        self.proxy = None
        self.proxy_username = None
        self.proxy_password = None


class StandInConduit(object):
    def __init__(self, pkglist, conf):
        self._pkglist = pkglist
        self._conf = conf
        self.yumconf = StandInConf()
        self.messages = []

    def getDownloadPackages(self):
        return self._pkglist

    def confString(self, section, opt, default=None):
        return self._conf.get(section, {}).get(opt, default)

    def getConf(self):
        return self.yumconf

    def info(self, level, msg):
        self.messages.append((level, msg))


def digest(kind, path):
    h = hashlib.new(kind)
    f = open(path, 'rb')
    try:
        h.update(f.read())
    finally:
        f.close()
    return h.hexdigest()


class Installed(unittest.TestCase):
    """The installed files, when PT_TEST_PLUGIN_DIR and PT_TEST_PLUGIN_CONF
    (its installed pkgtorrent.conf) are set."""

    def setUp(self):
        if not _plugin_dir:
            self.skipTest('PT_TEST_PLUGIN_DIR not set (go test sets it for the installed package)')

    def test_loaded_from_the_installed_directory(self):
        want = os.path.realpath(_plugin_dir)
        for mod in (pkgtorrent, pkgtorrent.pkgtorrent_batch):
            self.assertEqual(os.path.dirname(os.path.realpath(mod.__file__)), want, mod.__file__)

    def test_shipped_conf(self):
        try:
            from configparser import RawConfigParser
        except ImportError:
            from ConfigParser import RawConfigParser
        parser = RawConfigParser()
        self.assertEqual(parser.read(os.environ['PT_TEST_PLUGIN_CONF']), [os.environ['PT_TEST_PLUGIN_CONF']])
        conf = {}
        for section in parser.sections():
            conf[section] = dict(parser.items(section))
        # yum loads the plugin only with enabled=1; all else is commented
        # out, so that pkgtorrent-get's config applies.
        self.assertEqual(conf, {'main': {'enabled': '1'}})
        settings = pkgtorrent._settings(StandInConduit([], conf))
        settings.check()
        cmd = pkgtorrent.pkgtorrent_batch.command_line(settings, pkgtorrent.pkgtorrent_batch.Batch(''), '/tmp/b')
        self.assertEqual(cmd, ['/usr/bin/pkgtorrent-get', '--batch', '/tmp/b', '--json', '--quiet',
                               '--http-fallback=false'])


class PredownloadHook(unittest.TestCase):
    def setUp(self):
        self.cache = tempfile.mkdtemp()
        self.state = tempfile.mkdtemp()

    def tearDown(self):
        get = os.environ.get('PT_TEST_GET')
        if get:
            os.system("'%s' --config /dev/null --state-dir '%s' stop" % (get, self.state))
        shutil.rmtree(self.cache)
        shutil.rmtree(self.state)

    def real(self):
        env = [os.environ.get(k) for k in ('PT_TEST_GET', 'PT_TEST_SERVICE', 'PT_TEST_REPO')]
        if not all(env):
            self.skipTest('PT_TEST_GET, PT_TEST_SERVICE, PT_TEST_REPO not set (go test sets them)')
        return env

    def packages(self, repo_dir, repo):
        pkgs = []
        names = []
        for d, _, files in os.walk(repo_dir):
            for n in files:
                if n.endswith('.rpm'):
                    names.append(os.path.relpath(os.path.join(d, n), repo_dir))
        for i, name in enumerate(sorted(names)):
            kind = 'sha256'
            if i == 1:
                kind = 'sha1'  # not passed to pkgtorrent-get; yum checks it
            pkgs.append(StandInPackage(repo, name, self.cache, kind,
                                       digest(kind, os.path.join(repo_dir, name))))
        return pkgs

    def test_fetches_into_yum_cache(self):
        get, service, repo_dir = self.real()
        repo = StandInRepo('base', [service + 'el/'])
        pkgs = self.packages(repo_dir, repo)
        # Already cached and valid: left out of the batch.
        cached = pkgs[0]
        os.makedirs(os.path.dirname(cached.localPkg()))
        shutil.copy(os.path.join(repo_dir, cached.relativepath), cached.localPkg())
        # A command-line package: yum's own.
        local = StandInPackage(repo, 'local.rpm', self.cache, 'sha256', '0' * 64, pkgtype='local')
        conduit = StandInConduit(pkgs + [local], {
            'main': {'command': get, 'config': '/dev/null', 'service': service,
                     'state_dir': self.state, 'timeout': '120'},
            'base': {'path': 'el'},
        })
        pkgtorrent.predownload_hook(conduit)
        self.assertEqual(len(conduit.messages), 1, conduit.messages)
        self.assertTrue(conduit.messages[0][1].startswith('pkgtorrent: fetched %d files' % (len(pkgs) - 1)),
                        conduit.messages)
        for po in pkgs:
            self.assertTrue(po.verifyLocalPkg(), po.relativepath)  # yum's verify_local accepts it
        self.assertFalse(os.path.exists(local.localPkg()))

    def test_service_down_changes_nothing(self):
        get, service, repo_dir = self.real()
        repo = StandInRepo('base', [service + 'el/'])
        pkgs = self.packages(repo_dir, repo)
        conduit = StandInConduit(pkgs, {
            'main': {'command': get, 'config': '/dev/null', 'service': 'http://127.0.0.1:1/',
                     'state_dir': self.state, 'connect_timeout': '1'},
        })
        pkgtorrent.predownload_hook(conduit)
        self.assertEqual(len(conduit.messages), 1)
        self.assertEqual(conduit.messages[0][0], 1)
        self.assertTrue('yum' in conduit.messages[0][1] or 'package manager' in conduit.messages[0][1])
        for po in pkgs:
            self.assertFalse(os.path.exists(po.localPkg()))

    def test_missing_command_never_raises(self):
        repo = StandInRepo('base', ['http://127.0.0.1:1/el/'])
        po = StandInPackage(repo, 'a.rpm', self.cache, 'sha256', 'ab' * 32)
        conduit = StandInConduit([po], {'main': {'command': '/nonexistent/pkgtorrent-get'}})
        pkgtorrent.predownload_hook(conduit)
        self.assertEqual(len(conduit.messages), 1)
        self.assertTrue('cannot run' in conduit.messages[0][1])

    def test_malformed_setting_is_one_line(self):
        repo = StandInRepo('base', ['http://127.0.0.1:1/el/'])
        po = StandInPackage(repo, 'a.rpm', self.cache, 'sha256', 'ab' * 32)
        for main in ({'timeout': 'soon'}, {'stall_timeout': '15s'}, {'connect_timeout': '0'}):
            main['command'] = '/nonexistent/pkgtorrent-get'
            conduit = StandInConduit([po], {'main': main})
            pkgtorrent.predownload_hook(conduit)
            self.assertEqual(len(conduit.messages), 1, conduit.messages)
            self.assertEqual(conduit.messages[0][0], 1)
            self.assertTrue('cannot run' not in conduit.messages[0][1], conduit.messages)
            self.assertFalse(os.path.exists(po.localPkg()))

    def test_cache_only_does_nothing(self):
        repo = StandInRepo('base', ['http://127.0.0.1:1/el/'])
        po = StandInPackage(repo, 'a.rpm', self.cache, 'sha256', 'ab' * 32)
        conduit = StandInConduit([po], {'main': {'command': '/nonexistent/pkgtorrent-get'}})
        conduit.yumconf.cache = 1
        pkgtorrent.predownload_hook(conduit)
        self.assertEqual(conduit.messages, [])

    def test_repo_settings_use_yum_variables(self):
        repo = StandInRepo('base', ['http://m/centos/6/os/x86_64/'])
        po = StandInPackage(repo, 'Packages/a.rpm', self.cache, 'sha256', 'ab' * 32)
        conduit = StandInConduit([po], {'base': {'path': 'centos/$releasever/os/$basearch'},
                                        'main': {'service': 'http://svc/'}})
        settings = pkgtorrent._settings(conduit)
        batches, skipped = pkgtorrent.pkgtorrent_batch.build_batches(
            settings, [pkgtorrent._package(po)])
        self.assertEqual(batches[0].mirrors, ['http://m/'])
        self.assertEqual(batches[0].lines[0].split()[:2],
                         ['http://m/centos/6/os/x86_64/Packages/a.rpm', po.localPkg()])


if __name__ == '__main__':
    unittest.main()
