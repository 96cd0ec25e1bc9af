#include <cstdio>
int main() { std::puts("clusterpin"); return 0; }
