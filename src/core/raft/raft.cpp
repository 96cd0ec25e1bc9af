// Placeholder until the pure Raft core lands.
#include "core/raft/types.hpp"
