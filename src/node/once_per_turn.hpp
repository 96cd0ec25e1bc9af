// OncePerTurn runs a function once after the io thread's current turn, however often it was
// asked for during that turn: what one turn gathers (applied pins, pinset changes asked of the
// peer) is then handled together. Destroying it cancels a run not yet made. Use it on the
// io_context's thread only.
#pragma once

#include <functional>
#include <memory>
#include <utility>

#include <asio.hpp>

namespace clusterpin::node {

class OncePerTurn {
 public:
  OncePerTurn(asio::io_context& io, std::function<void()> fn) : io_(io), fn_(std::move(fn)) {}
  ~OncePerTurn() { *alive_ = false; }
  OncePerTurn(const OncePerTurn&) = delete;
  OncePerTurn& operator=(const OncePerTurn&) = delete;

  void request() {
    if (posted_) return;
    posted_ = true;
    asio::post(io_, [this, alive = alive_] {
      if (!*alive) return;
      posted_ = false;
      fn_();
    });
  }

 private:
  asio::io_context& io_;
  std::function<void()> fn_;
  bool posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace clusterpin::node
