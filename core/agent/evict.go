package agent

// drop removes e from the engine and releases its data files.
func (a *Agent) drop(e *entry) {
	ih := e.t.InfoHash()
	a.mu.Lock()
	if a.entries[ih] == e {
		delete(a.entries, ih)
		a.holders.remove(e)
	}
	a.mu.Unlock()
	e.t.Drop()
	e.layout.Close()
}

// enforceMaxDisk brings the store under MaxDisk: first data no torrent
// uses, oldest first, then the idle torrents seeded longest ago.
func (a *Agent) enforceMaxDisk() {
	if a.cfg.MaxDisk <= 0 {
		return
	}
	for {
		used, err := a.store.Prune(a.cfg.MaxDisk)
		if err != nil {
			a.log.Warn("pruning data", "err", err)
			return
		}
		if used <= a.cfg.MaxDisk {
			return
		}
		var oldest *entry
		a.mu.Lock()
		for _, e := range a.entries {
			if e.users == 0 && (oldest == nil || e.lastUsed.Before(oldest.lastUsed)) {
				oldest = e
			}
		}
		a.mu.Unlock()
		if oldest == nil {
			return // everything left is in use
		}
		a.log.Info("evicting torrent over max-disk", "torrent", oldest.t.InfoHash().HexString(), "used", used, "max_disk", a.cfg.MaxDisk)
		a.drop(oldest)
	}
}
