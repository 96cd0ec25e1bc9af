// Placeholder until the network layer lands.
#include "core/result.hpp"
