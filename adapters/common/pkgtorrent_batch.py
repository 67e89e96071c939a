# pkgtorrent_batch: what the dnf and yum plugins of pkgtorrent share.
#
# Building the batch (one "URL OUTPUT [sha256:HEX]" line per package), the
# webseed mirror bases of each repository, the plugin settings, and running
# pkgtorrent-get with a time limit. The URL -> repository path mapping is NOT
# here: pkgtorrent-get does it (core/mirror.RelPath), from the URLs and the
# --mirror bases given to it.
#
# Syntax for Python 2.6, 2.7 and 3 (yum 3 runs on Python 2.6/2.7): no
# f-strings, no dict or set comprehensions, "%" formatting only.
#
# Shipped beside each plugin (dnf: the dnf-plugins directory; yum: the
# yum-plugins directory); the plugins put their own directory on sys.path.

import json
import os
import signal
import subprocess
import tempfile
import time

# Settings and their defaults, as in pkgtorrent.conf's [main] section.
DEFAULTS = {
    # pkgtorrent-get to run.
    'command': '/usr/bin/pkgtorrent-get',
    # pkgtorrent-get's own config file (service URL, state dir, limits);
    # empty: its default (/etc/pkgtorrent/pkgtorrent.conf).
    'config': '',
    # Service URL; empty: the one in pkgtorrent-get's config file.
    'service': '',
    # Agent state directory; empty: pkgtorrent-get's default.
    'state_dir': '',
    # Whole-run limit in seconds: pkgtorrent-get is stopped after it and the
    # package manager downloads what is missing.
    'timeout': '300',
    # pkgtorrent-get --connect-timeout and --stall-timeout, in seconds;
    # empty: not passed, so pkgtorrent-get's config (or its own default)
    # applies.
    'connect_timeout': '',
    'stall_timeout': '',
}

# Per-repository settings ([REPOID] sections).
REPO_KEYS = ('enabled', 'service', 'path')

BYTE_UNITS = ('B', 'KiB', 'MiB', 'GiB', 'TiB')


class Error(Exception):
    """A batch could not be fetched; the package manager downloads it."""


class Package(object):
    """One package the package manager is about to download.

    url: where the package manager would download it (http or https).
    output: the exact path where the package manager looks for it cached.
    checksum_type, checksum: from the repository metadata (hex digest).
    repo_id: the repository; repo_urls: all its base URLs (baseurl list and
    the resolved mirrorlist/metalink), in the package manager's order.
    """

    def __init__(self, url, output, checksum_type, checksum, repo_id, repo_urls):
        self.url = url
        self.output = output
        self.checksum_type = checksum_type
        self.checksum = checksum
        self.repo_id = repo_id
        self.repo_urls = list(repo_urls or [])


class Settings(object):
    """The plugin's settings: [main] values and [REPOID] sections.

    get(section, key) returns the string value or None when unset;
    subst(value) expands the package manager's variables ($releasever,
    $basearch) in [REPOID] values.
    """

    def __init__(self, get, subst=None):
        self._get = get
        self._subst = subst or (lambda v: v)

    def main(self, key):
        v = self._get('main', key)
        if v is None or v.strip() == '':
            return DEFAULTS.get(key, '')
        return v.strip()

    def seconds(self, key):
        v = self.main(key)
        try:
            f = float(v)
        except ValueError:
            raise Error('setting %s = %r is not a number of seconds' % (key, v))
        if f <= 0:
            raise Error('setting %s = %r must be positive' % (key, v))
        return f

    def check(self):
        """Raises Error when a [main] number is not a positive number of
        seconds."""
        for key in ('timeout', 'connect_timeout', 'stall_timeout'):
            if self.main(key):
                self.seconds(key)

    def repo(self, repo_id, key):
        """A [REPOID] setting, or None."""
        v = self._get(repo_id, key)
        if v is None:
            return None
        return self._subst(v.strip())

    def repo_enabled(self, repo_id):
        v = self.repo(repo_id, 'enabled')
        if v is None or v == '':
            return True
        return v.lower() not in ('0', 'no', 'false', 'off')

    def service_for(self, repo_id):
        """The service URL of a repository ('' for pkgtorrent-get's own)."""
        v = self.repo(repo_id, 'service')
        if v:
            return v
        return self.main('service')


def mirror_bases(repo_urls, path):
    """The tree roots of a repository's mirrors, for --mirror.

    path is where the repository lies in the service's tree ('' when the
    service's tree is the repository itself). A repository URL is a mirror
    of the tree when it ends in path; its base is what comes before. Only
    http and https URLs count.
    """
    path = (path or '').strip('/')
    bases = []
    for u in repo_urls:
        if not (u.startswith('http://') or u.startswith('https://')):
            continue
        if '?' in u or '#' in u:
            continue
        u = u.rstrip('/') + '/'
        if path:
            tail = '/' + path + '/'
            if not u.endswith(tail):
                continue
            u = u[:len(u) - len(tail) + 1]
        if u not in bases:
            bases.append(u)
    return bases


def batch_line(pkg):
    """The batch line of pkg, or (None, reason) when it is left to the
    package manager."""
    if not (pkg.url.startswith('http://') or pkg.url.startswith('https://')):
        return None, 'not an http(s) URL'
    if len(pkg.url.split()) != 1 or len(pkg.output.split()) != 1 or pkg.output != pkg.output.strip():
        return None, 'URL or cache path holds white space'
    line = '%s %s' % (pkg.url, pkg.output)
    if (pkg.checksum_type or '').lower() == 'sha256' and pkg.checksum:
        h = pkg.checksum.lower()
        if len(h) == 64 and not h.strip('0123456789abcdef'):
            line += ' sha256:' + h
    # Other checksum types (sha1, sha512, md5) are not passed: the torrent's
    # piece hashes still verify the file, and the package manager checks the
    # metadata checksum before it uses the file (a mismatch is downloaded
    # again by the package manager itself).
    return line, None


class Batch(object):
    """One pkgtorrent-get run: the packages of one service."""

    def __init__(self, service):
        self.service = service
        self.lines = []
        self.mirrors = []

    def add(self, line, bases):
        self.lines.append(line)
        service = (self.service or '').rstrip('/') + '/'
        for b in bases:
            # The service is a webseed already.
            if b != service and b not in self.mirrors:
                self.mirrors.append(b)


def build_batches(settings, packages):
    """Groups packages by service into batches.

    Returns (batches, skipped): batches in first-seen order, skipped a list
    of (package, reason).
    """
    batches = []
    by_service = {}
    skipped = []
    seen = {}
    for pkg in packages:
        if not settings.repo_enabled(pkg.repo_id):
            skipped.append((pkg, 'repository %s disabled in pkgtorrent.conf' % pkg.repo_id))
            continue
        if pkg.output in seen:
            continue
        line, why = batch_line(pkg)
        if line is None:
            skipped.append((pkg, why))
            continue
        seen[pkg.output] = True
        service = settings.service_for(pkg.repo_id)
        b = by_service.get(service)
        if b is None:
            b = Batch(service)
            by_service[service] = b
            batches.append(b)
        b.add(line, mirror_bases(pkg.repo_urls, settings.repo(pkg.repo_id, 'path')))
    return batches, skipped


def command_line(settings, batch, batch_file):
    """The pkgtorrent-get command for batch, reading batch_file."""
    cmd = [settings.main('command'), '--batch', batch_file, '--json', '--quiet',
           '--http-fallback=false']
    # Only what the plugin's own config sets: pkgtorrent-get's config file
    # (and its defaults) apply to everything else.
    for key, flag in (('connect_timeout', '--connect-timeout'), ('stall_timeout', '--stall-timeout')):
        if settings.main(key):
            cmd += [flag, '%gs' % settings.seconds(key)]
    if settings.main('config'):
        cmd += ['--config', settings.main('config')]
    if batch.service:
        cmd += ['--service', batch.service]
    if settings.main('state_dir'):
        cmd += ['--state-dir', settings.main('state_dir')]
    for m in batch.mirrors:
        cmd += ['--mirror', m]
    return cmd


def _stop(proc):
    """SIGTERM (pkgtorrent-get removes its temporary files), then SIGKILL."""
    try:
        proc.send_signal(signal.SIGTERM)
    except OSError:
        return
    deadline = time.time() + 5
    while proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
        proc.wait()


def _read(path):
    f = open(path)
    try:
        return f.read()
    finally:
        f.close()


def _last_line(text):
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    if not lines:
        return ''
    return lines[-1]


def run_batch(settings, batch, env=None):
    """Runs pkgtorrent-get for batch and returns its JSON summary (a dict).

    Raises Error with a one-line reason on any failure: missing command,
    time limit, non-zero exit, unreadable output.
    """
    timeout = settings.seconds('timeout')
    tmpdir = tempfile.mkdtemp(prefix='pkgtorrent-')
    paths = {}
    try:
        for name in ('batch', 'stdout', 'stderr'):
            paths[name] = os.path.join(tmpdir, name)
        f = open(paths['batch'], 'w')
        try:
            f.write('\n'.join(batch.lines) + '\n')
        finally:
            f.close()
        cmd = command_line(settings, batch, paths['batch'])
        null = open(os.devnull)
        out = open(paths['stdout'], 'w')
        err = open(paths['stderr'], 'w')
        try:
            try:
                proc = subprocess.Popen(cmd, stdin=null, stdout=out, stderr=err,
                                        env=env, close_fds=True)
            except OSError as e:
                raise Error('cannot run %s: %s' % (cmd[0], e.strerror or e))
            deadline = time.time() + timeout
            while proc.poll() is None:
                if time.time() >= deadline:
                    _stop(proc)
                    raise Error('%s took longer than %gs' % (cmd[0], timeout))
                time.sleep(0.05)
        finally:
            null.close()
            out.close()
            err.close()
        stdout = _read(paths['stdout'])
        stderr = _read(paths['stderr'])
        result = None
        try:
            result = json.loads(_last_line(stdout) or 'null')
        except ValueError:
            pass
        if proc.returncode != 0:
            reason = ''
            if isinstance(result, dict) and result.get('error'):
                reason = result['error']
            else:
                reason = _last_line(stderr) or 'exit status %d' % proc.returncode
            raise Error(reason)
        if not isinstance(result, dict) or 'files' not in result:
            raise Error('%s printed no summary' % cmd[0])
        return result
    finally:
        for p in paths.values():
            if os.path.exists(p):
                os.remove(p)
        os.rmdir(tmpdir)


def human(n):
    n = float(n)
    for u in BYTE_UNITS:
        if n < 1024 or u == BYTE_UNITS[-1]:
            if u == 'B':
                return '%d B' % n
            return '%.1f %s' % (n, u)
        n /= 1024


def describe(result):
    """The log line of a successful run."""
    return ('%d files (%s) in %.1fs: %d bytes from peers, %d bytes from webseeds'
            % (result.get('files', 0), human(result.get('bytes', 0)),
               result.get('seconds', 0), result.get('bytes_from_peers', 0),
               result.get('bytes_from_webseed', 0)))


def prefetch(settings, packages, info, warn=None, env=None):
    """Fetches packages through pkgtorrent, one pkgtorrent-get run per
    service, and reports one line per run: info(message) on success,
    warn(message) on failure. Never raises: on failure the package manager
    downloads what is missing.

    Returns the list of (batch, result or None) for the runs.
    """
    warn = warn or info
    runs = []
    try:
        batches, skipped = build_batches(settings, packages)
    except Exception as e:
        warn('pkgtorrent: not used (%s); the package manager downloads the packages' % e)
        return runs
    if skipped:
        info('pkgtorrent: %d packages left to the package manager (%s)' % (len(skipped), skipped[0][1]))
    for b in batches:
        try:
            result = run_batch(settings, b, env)
        except Exception as e:
            warn('pkgtorrent: %s; the package manager downloads the %d packages itself' % (e, len(b.lines)))
            runs.append((b, None))
            continue
        info('pkgtorrent: fetched %s' % describe(result))
        runs.append((b, result))
    return runs


def proxy_env(proxy, username=None, password=None, base=None):
    """The environment for pkgtorrent-get with the package manager's proxy
    setting (http_proxy/https_proxy), or None to inherit it unchanged."""
    if not proxy or proxy.lower() in ('_none_', 'none'):
        return None
    env = dict(base if base is not None else os.environ)
    if username and '://' in proxy and '@' not in proxy:
        scheme, rest = proxy.split('://', 1)
        try:
            from urllib import quote  # Python 2
        except ImportError:
            from urllib.parse import quote
        auth = quote(username, safe='')
        if password:
            auth += ':' + quote(password, safe='')
        proxy = '%s://%s@%s' % (scheme, auth, rest)
    for k in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY'):
        env[k] = proxy
    return env
