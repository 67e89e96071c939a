# Unit tests of pkgtorrent_batch (Python 2.6+/3 syntax). Run:
#   /usr/bin/python3 -m unittest discover -s adapters/common -p 'test_*.py'
# (go test ./adapters/dnf/ runs them.)

import os
import shutil
import tempfile
import unittest

import pkgtorrent_batch as ptb

SUM = 'ab' * 32


def settings(conf):
    return ptb.Settings(lambda section, key: conf.get(section, {}).get(key))


def package(name, repo='r', urls=None, ctype='sha256', csum=SUM, base='http://m.example/el/'):
    return ptb.Package(base + 'Packages/' + name, '/var/cache/dnf/r/packages/' + name,
                       ctype, csum, repo, urls if urls is not None else [base])


class MirrorBases(unittest.TestCase):
    def test_repository_is_the_tree(self):
        self.assertEqual(ptb.mirror_bases(['http://a/el/', 'https://b/x/el', 'file:///srv/el/', 'ftp://c/el/'], ''),
                         ['http://a/el/', 'https://b/x/el/'])

    def test_repository_below_the_tree_root(self):
        got = ptb.mirror_bases(['http://a/pub/el/9/os', 'http://b/el/9/os/', 'http://c/other/'], '/el/9/os/')
        self.assertEqual(got, ['http://a/pub/', 'http://b/'])

    def test_no_duplicates_no_queries(self):
        self.assertEqual(ptb.mirror_bases(['http://a/el/', 'http://a/el', 'http://q/el/?x=1'], ''), ['http://a/el/'])


class BatchLine(unittest.TestCase):
    def test_sha256_is_passed(self):
        line, why = ptb.batch_line(package('a.rpm', csum=SUM.upper()))
        self.assertEqual(why, None)
        self.assertEqual(line, 'http://m.example/el/Packages/a.rpm /var/cache/dnf/r/packages/a.rpm sha256:' + SUM)

    def test_other_checksums_are_left_to_the_package_manager(self):
        for ctype, csum in (('sha1', 'ab' * 20), ('sha512', 'ab' * 64), ('sha256', 'xyz'), (None, None)):
            line, why = ptb.batch_line(package('a.rpm', ctype=ctype, csum=csum))
            self.assertEqual(line.split(), ['http://m.example/el/Packages/a.rpm', '/var/cache/dnf/r/packages/a.rpm'])

    def test_unusable(self):
        p = package('a.rpm')
        p.output = '/var/cache/my dir/a.rpm'
        self.assertEqual(ptb.batch_line(p)[0], None)
        p = package('a.rpm', base='file:///srv/el/')
        self.assertEqual(ptb.batch_line(p), (None, 'not an http(s) URL'))


class BuildBatches(unittest.TestCase):
    def test_one_batch_per_service(self):
        s = settings({'main': {'service': 'http://svc/'},
                      'other': {'service': 'http://svc2/', 'path': 'o'},
                      'off': {'enabled': '0'}})
        pkgs = [package('a.rpm'), package('b.rpm', repo='other', base='http://m2/o/'),
                package('c.rpm', repo='off'), package('a.rpm'),
                package('d.rpm', urls=['http://m.example/el/', 'http://svc/'])]
        batches, skipped = ptb.build_batches(s, pkgs)
        self.assertEqual([b.service for b in batches], ['http://svc/', 'http://svc2/'])
        self.assertEqual(len(batches[0].lines), 2)  # a (once) and d
        # The service itself is no extra mirror.
        self.assertEqual(batches[0].mirrors, ['http://m.example/el/'])
        self.assertEqual(batches[1].mirrors, ['http://m2/'])
        self.assertEqual(len(skipped), 1)
        self.assertTrue('disabled' in skipped[0][1])

    def test_substitution_of_repo_settings(self):
        s = ptb.Settings(lambda sec, key: {'r': {'path': 'el/$releasever'}}.get(sec, {}).get(key),
                         lambda v: v.replace('$releasever', '9'))
        self.assertEqual(s.repo('r', 'path'), 'el/9')


class CommandLine(unittest.TestCase):
    def test_flags(self):
        s = settings({'main': {'command': '/opt/pkgtorrent-get', 'config': '/etc/x.conf',
                               'state_dir': '/s', 'connect_timeout': '1.5'}})
        b = ptb.Batch('http://svc/')
        b.add('u o', ['http://m/'])
        cmd = ptb.command_line(s, b, '/tmp/batch')
        self.assertEqual(cmd[:3], ['/opt/pkgtorrent-get', '--batch', '/tmp/batch'])
        for want in (['--http-fallback=false'], ['--json'], ['--connect-timeout', '1.5s'],
                     ['--config', '/etc/x.conf'],
                     ['--service', 'http://svc/'], ['--state-dir', '/s'], ['--mirror', 'http://m/']):
            i = cmd.index(want[0])
            self.assertEqual(cmd[i:i + len(want)], want)
        # Not set in the plugin's config: pkgtorrent-get's own applies.
        self.assertFalse('--stall-timeout' in cmd, cmd)

    def test_only_what_the_plugin_config_sets(self):
        # The shipped pkgtorrent.conf: everything but enabled commented out
        # (empty values count as unset).
        for main in ({'enabled': '1'}, {'enabled': '1', 'connect_timeout': '', 'stall_timeout': ' ',
                                        'config': '', 'service': '', 'state_dir': ''}):
            cmd = ptb.command_line(settings({'main': main}), ptb.Batch(''), '/tmp/batch')
            self.assertEqual(cmd, ['/usr/bin/pkgtorrent-get', '--batch', '/tmp/batch', '--json', '--quiet',
                                   '--http-fallback=false'])
        s = settings({'main': {'stall_timeout': '40'}})
        cmd = ptb.command_line(s, ptb.Batch(''), '/tmp/batch')
        self.assertEqual(cmd[-2:], ['--stall-timeout', '40s'])
        self.assertFalse('--connect-timeout' in cmd, cmd)

    def test_bad_number(self):
        s = settings({'main': {'timeout': 'soon'}})
        self.assertRaises(ptb.Error, s.seconds, 'timeout')
        for main in ({'timeout': 'soon'}, {'connect_timeout': '-1'}, {'stall_timeout': '15s'}):
            self.assertRaises(ptb.Error, settings({'main': main}).check)
        settings({'main': {'connect_timeout': '', 'stall_timeout': '2.5'}}).check()


class RunBatch(unittest.TestCase):
    """run_batch against stand-in commands (shell scripts) for the exit
    paths; the real pkgtorrent-get runs in the Go tests."""

    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def script(self, body):
        self.n = getattr(self, 'n', 0) + 1
        p = os.path.join(self.dir, 'cmd%d' % self.n)
        f = open(p, 'w')
        f.write('#!/bin/sh\n' + body + '\n')
        f.close()
        os.chmod(p, 493)  # 0755
        return p

    def run_with(self, command, timeout='5'):
        s = settings({'main': {'command': command, 'timeout': timeout}})
        b = ptb.Batch('')
        b.add('http://m/a.rpm /tmp/a.rpm', [])
        return ptb.run_batch(s, b)

    def test_summary(self):
        r = self.run_with(self.script('echo \'{"files":1,"bytes":5,"bytes_from_peers":3,"bytes_from_webseed":2,"seconds":0.5}\''))
        self.assertEqual(r['files'], 1)
        self.assertEqual(ptb.describe(r), '1 files (5 B) in 0.5s: 3 bytes from peers, 2 bytes from webseeds')

    def test_failures_are_one_line(self):
        cases = [
            (self.script('echo \'{"error":"service unreachable"}\'; exit 1'), 'service unreachable'),
            (self.script('echo boom >&2; exit 3'), 'boom'),
            (self.script('exit 0'), 'printed no summary'),
            (os.path.join(self.dir, 'missing'), 'cannot run'),
        ]
        for command, want in cases:
            try:
                self.run_with(command)
            except ptb.Error as e:
                self.assertTrue(want in str(e), '%r not in %r' % (want, str(e)))
            else:
                self.fail('no error for %s' % want)

    def test_time_limit(self):
        import time
        start = time.time()
        try:
            self.run_with(self.script('exec sleep 30'), timeout='0.5')
        except ptb.Error as e:
            self.assertTrue('longer than 0.5s' in str(e))
        else:
            self.fail('no error')
        self.assertTrue(time.time() - start < 10)

    def test_prefetch_never_raises(self):
        lines = []
        s = settings({'main': {'command': os.path.join(self.dir, 'missing')}})
        runs = ptb.prefetch(s, [package('a.rpm')], lines.append)
        self.assertEqual(runs[0][1], None)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith('pkgtorrent: cannot run'))


class ProxyEnv(unittest.TestCase):
    def test_proxy(self):
        self.assertEqual(ptb.proxy_env('', base={}), None)
        self.assertEqual(ptb.proxy_env('_none_', base={}), None)
        env = ptb.proxy_env('http://proxy:3128', 'u', 'p w', base={'A': '1'})
        self.assertEqual(env['https_proxy'], 'http://u:p%20w@proxy:3128')
        self.assertEqual(env['A'], '1')


if __name__ == '__main__':
    unittest.main()
