"""Fetch a pkgtorrent batch torrent with libtorrent 2.0: from the torrent's
webseeds, or (--peer HOST:PORT, webseeds removed) from one peer. Prints one
JSON line: the payload bytes downloaded and the time."""
import json
import sys
import time

import libtorrent as lt


def main():
    torrent, save = sys.argv[1], sys.argv[2]
    peer = sys.argv[3] if len(sys.argv) > 3 else None
    with open(torrent, 'rb') as f:
        meta = lt.bdecode(f.read())
    if peer:
        meta.pop(b'url-list', None)
        meta.pop(b'x-pkgtorrent-mirrors', None)
        meta.pop(b'announce', None)
        meta.pop(b'announce-list', None)
    ti = lt.torrent_info(meta)
    ses = lt.session({
        'listen_interfaces': '127.0.0.1:0',
        'enable_dht': False, 'enable_lsd': False, 'enable_upnp': False, 'enable_natpmp': False,
        'alert_mask': 0,
        'allow_multiple_connections_per_ip': True,
        'out_enc_policy': 2, 'in_enc_policy': 1,  # plaintext to the agent
    })
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = save
    h = ses.add_torrent(atp)
    if peer:
        host, port = peer.rsplit(':', 1)
        h.connect_peer((host, int(port)))
    start = time.time()
    deadline = start + 60
    while time.time() < deadline:
        s = h.status()
        if s.is_seeding:
            print(json.dumps({'ok': True, 'payload_download': s.total_payload_download,
                              'total_download': s.total_download, 'seconds': time.time() - start}))
            return 0
        time.sleep(0.05)
    s = h.status()
    print(json.dumps({'ok': False, 'progress': s.progress, 'state': str(s.state), 'peers': s.num_peers}))
    return 1


if __name__ == '__main__':
    sys.exit(main())
