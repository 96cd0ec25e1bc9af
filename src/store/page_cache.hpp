// SQLite's page cache (pcache1) behind a thin wrapper that answers needless truncations itself.
//
// At the end of every write transaction SQLite asks its page cache to drop the pages past the
// end of the database (xTruncate). pcache1 does that work only when a page with a key that high
// was ever cached, and it remembers the highest key it has seen until such a truncation. But
// balancing a b-tree node moves pages through a temporary key far past the end (the page of
// the 1 GiB lock byte, 262,145 with 4 KiB pages), so in any database under 1 GiB almost every
// commit that split a page (with random keys, nearly all of them) made pcache1 walk its whole
// hash table and every cached page: 5% of the leader's CPU at 64 clients, and more as a 64 MiB
// cache fills. The wrapper keeps a bound of the keys really present (the highest key a fetch
// created, and the keys pages were moved to while they stay there) and passes a truncation on
// only when a page at or past the limit may exist; everything else goes straight to pcache1.
#pragma once

#include <cstdint>

namespace clusterpin::store {

// Installs the wrapper. It must run before SQLite initialises (Connection::open calls it before
// its first open); when SQLite refuses (already initialised elsewhere) the default cache stays
// and this returns false.
bool install_page_cache();

// Truncations passed on to pcache1 and answered by the wrapper, since the process started.
struct PageCacheStats {
  std::uint64_t passed = 0;
  std::uint64_t skipped = 0;
};
PageCacheStats page_cache_stats();

}  // namespace clusterpin::store
