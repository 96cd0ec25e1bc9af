// The page-cache wrapper (see page_cache.hpp). Every method forwards to SQLite's own cache; the
// wrapper only tracks an upper bound of the keys present so that xTruncate can be answered
// without pcache1's full scan when nothing at or past the limit can be cached.
//
// Why the bound holds: a page enters a cache only through xFetch with a create flag (its key is
// then at most `max_created`) or changes key through xRekey (a key above `max_created` is kept
// in `moved` until the page is fetched again, discarded or truncated away). pcache1 may recycle
// a page object for another key or another cache without telling us; the recycled page comes
// back through a creating xFetch, and an entry left behind in `moved` only makes the bound
// higher than needed (a truncation is passed on), never lower.
#include "store/page_cache.hpp"

#include <sqlite3.h>

#include <atomic>
#include <new>
#include <unordered_map>

namespace clusterpin::store {

namespace {

sqlite3_pcache_methods2 g_inner{};  // SQLite's own cache; set once, before SQLite initialises
std::atomic<std::uint64_t> g_passed{0};
std::atomic<std::uint64_t> g_skipped{0};

struct Cache {
  sqlite3_pcache* inner = nullptr;
  unsigned max_created = 0;  // no page created by a fetch has a higher key
  std::unordered_map<sqlite3_pcache_page*, unsigned> moved;  // rekeyed above max_created
};

Cache* of(sqlite3_pcache* p) { return reinterpret_cast<Cache*>(p); }

int init(void*) { return g_inner.xInit != nullptr ? g_inner.xInit(g_inner.pArg) : SQLITE_OK; }

void shutdown(void*) {
  if (g_inner.xShutdown != nullptr) g_inner.xShutdown(g_inner.pArg);
}

sqlite3_pcache* create(int page_size, int extra_size, int purgeable) {
  auto* c = new (std::nothrow) Cache;
  if (c == nullptr) return nullptr;
  c->inner = g_inner.xCreate(page_size, extra_size, purgeable);
  if (c->inner == nullptr) {
    delete c;
    return nullptr;
  }
  return reinterpret_cast<sqlite3_pcache*>(c);
}

void cache_size(sqlite3_pcache* p, int pages) { g_inner.xCachesize(of(p)->inner, pages); }

int page_count(sqlite3_pcache* p) { return g_inner.xPagecount(of(p)->inner); }

sqlite3_pcache_page* fetch(sqlite3_pcache* p, unsigned key, int create_flag) {
  Cache* c = of(p);
  sqlite3_pcache_page* page = g_inner.xFetch(c->inner, key, create_flag);
  if (page != nullptr && create_flag != 0) {
    if (key > c->max_created) c->max_created = key;
    if (!c->moved.empty()) c->moved.erase(page);
  }
  return page;
}

void unpin(sqlite3_pcache* p, sqlite3_pcache_page* page, int discard) {
  Cache* c = of(p);
  if (discard != 0 && !c->moved.empty()) c->moved.erase(page);
  g_inner.xUnpin(c->inner, page, discard);
}

void rekey(sqlite3_pcache* p, sqlite3_pcache_page* page, unsigned old_key, unsigned new_key) {
  Cache* c = of(p);
  g_inner.xRekey(c->inner, page, old_key, new_key);
  if (new_key > c->max_created) {
    c->moved[page] = new_key;
  } else if (!c->moved.empty()) {
    c->moved.erase(page);
  }
}

void truncate(sqlite3_pcache* p, unsigned limit) {
  Cache* c = of(p);
  bool may_hold = c->max_created >= limit;
  for (auto it = c->moved.begin(); !may_hold && it != c->moved.end(); ++it)
    may_hold = it->second >= limit;
  if (!may_hold) {
    g_skipped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  g_passed.fetch_add(1, std::memory_order_relaxed);
  g_inner.xTruncate(c->inner, limit);
  // Nothing at or past `limit` is cached now.
  if (c->max_created >= limit) c->max_created = limit > 0 ? limit - 1 : 0;
  std::erase_if(c->moved, [limit](const auto& entry) { return entry.second >= limit; });
}

void destroy(sqlite3_pcache* p) {
  Cache* c = of(p);
  g_inner.xDestroy(c->inner);
  delete c;
}

void shrink(sqlite3_pcache* p) { g_inner.xShrink(of(p)->inner); }

}  // namespace

bool install_page_cache() {
  sqlite3_pcache_methods2 inner{};
  if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner) != SQLITE_OK) return false;
  if (inner.xFetch == nullptr || inner.xTruncate == nullptr) return false;
  g_inner = inner;
  static const sqlite3_pcache_methods2 wrapper = {
      1,        nullptr, init,     shutdown, create,  cache_size, page_count,
      fetch,    unpin,   rekey,    truncate, destroy, shrink,
  };
  return sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) == SQLITE_OK;
}

PageCacheStats page_cache_stats() {
  return {g_passed.load(std::memory_order_relaxed), g_skipped.load(std::memory_order_relaxed)};
}

}  // namespace clusterpin::store
