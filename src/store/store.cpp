// Placeholder until the SQLite stores land.
#include "core/raft/types.hpp"
