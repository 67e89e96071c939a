// Package dnf holds the end-to-end tests of the pkgtorrent dnf 4 plugin
// (pkgtorrent.py beside this file) and the yum 3 plugin (../yum): real dnf
// installroots, rpms built with rpmbuild, a repository made by createrepo_c
// and served by pkgtorrent-service, all on 127.0.0.1. It also runs the
// plugins' Python unit tests. The package has no non-test code.
package dnf
