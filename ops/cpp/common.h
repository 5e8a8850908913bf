// Shared pieces of every vampnet kernel: errors, shape checks and the parallel-for abstraction.
//
// A kernel is written once as plain C++ on raw arrays plus a `Parallel` object. The ONNX Runtime binding
// (ort_op.h) passes a Parallel backed by ORT's intra-op thread pool; the pybind11 module passes one backed by
// std::thread. Every kernel splits its work into blocks whose boundaries depend only on the problem size, and
// every output element is computed by exactly one block with a fixed order of operations, so results never
// depend on the thread count.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>  // defines __GLIBC__ where glibc is the C library
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

// ---- portability: the one place that spells compiler- and ISA-specific attributes -------------------------------
//
// VAMPNET_CPU_DISPATCH: runtime CPU dispatch for hot loops. On x86-64 ELF/glibc with GCC or clang >= 14 the
// compiler emits x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and baseline versions of the function and the loader
// picks one per machine (the build itself stays portable; no -march=native). Everywhere else (aarch64, macOS,
// musl, other compilers, or -DVAMPNET_NO_CLONES) it expands to nothing and the one portable version is compiled
// for the target's baseline (NEON on aarch64), auto-vectorized. Every version computes each output element with
// the same fixed order of operations, so every ISA path is deterministic across thread counts.
#if defined(__has_attribute)
#define VAMPNET_HAS_ATTRIBUTE(x) __has_attribute(x)
#else
#define VAMPNET_HAS_ATTRIBUTE(x) 0
#endif
#if defined(__has_builtin)
#define VAMPNET_HAS_BUILTIN(x) __has_builtin(x)
#else
#define VAMPNET_HAS_BUILTIN(x) 0
#endif

#if !defined(VAMPNET_NO_CLONES) && defined(__x86_64__) && defined(__ELF__) && defined(__GLIBC__) && \
    VAMPNET_HAS_ATTRIBUTE(target_clones) && (!defined(__clang__) || __clang_major__ >= 14)
#define VAMPNET_CPU_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VAMPNET_CPU_DISPATCH
#endif

// Force-inline small helpers into each dispatched clone (so they are compiled for that clone's ISA).
#if VAMPNET_HAS_ATTRIBUTE(always_inline)
#define VAMPNET_INLINE inline __attribute__((always_inline))
#else
#define VAMPNET_INLINE inline
#endif

// Symbol visibility of the library's one entry point.
#if defined(_WIN32)
#define VAMPNET_EXPORT __declspec(dllexport)
#else
#define VAMPNET_EXPORT __attribute__((visibility("default")))
#endif

namespace vampnet {

// Every error a kernel raises. The message always starts with the op name.
class Error : public std::runtime_error {
 public:
  Error(const std::string& op, const std::string& message) : std::runtime_error(op + ": " + message) {}
};

using Shape = std::vector<int64_t>;

inline std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

inline int64_t num_elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

// Validation helpers: each throws vampnet::Error naming the op, the input and the problem.
inline void check(bool ok, const std::string& op, const std::string& message) {
  if (!ok) throw Error(op, message);
}

inline void check_rank(const std::string& op, const char* name, const Shape& s, size_t rank) {
  if (s.size() != rank) {
    std::ostringstream o;
    o << "input '" << name << "' must have rank " << rank << ", got shape " << shape_str(s);
    throw Error(op, o.str());
  }
}

inline void check_min_rank(const std::string& op, const char* name, const Shape& s, size_t rank) {
  if (s.size() < rank) {
    std::ostringstream o;
    o << "input '" << name << "' must have rank >= " << rank << ", got shape " << shape_str(s);
    throw Error(op, o.str());
  }
}

inline void check_dim(const std::string& op, const char* name, const Shape& s, size_t axis, int64_t expected,
                      const char* what) {
  if (s[axis] != expected) {
    std::ostringstream o;
    o << "input '" << name << "' dim " << axis << " is " << s[axis] << " but must equal " << what << " ("
      << expected << "); got shape " << shape_str(s);
    throw Error(op, o.str());
  }
}

inline void check_scalar(const std::string& op, const char* name, const Shape& s) {
  if (num_elements(s) != 1 || s.size() > 1) {
    std::ostringstream o;
    o << "input '" << name << "' must be a scalar (shape [] or [1]), got shape " << shape_str(s);
    throw Error(op, o.str());
  }
}

inline void check_nonempty(const std::string& op, const char* name, const Shape& s) {
  if (num_elements(s) == 0) {
    std::ostringstream o;
    o << "input '" << name << "' is empty (shape " << shape_str(s) << ")";
    throw Error(op, o.str());
  }
}

// Runs fn(i) for every i in [0, n) exactly once, possibly on several threads.
class Parallel {
 public:
  virtual ~Parallel() = default;
  virtual void run(size_t n, const std::function<void(size_t)>& fn) const = 0;
};

// Runs everything on the calling thread.
class SerialParallel final : public Parallel {
 public:
  void run(size_t n, const std::function<void(size_t)>& fn) const override {
    for (size_t i = 0; i < n; ++i) fn(i);
  }
};

// Splits [0, total) into blocks of at least `min_block` items (boundaries depend only on total and min_block)
// and calls fn(begin, end) once per block through `par`.
inline void parallel_blocks(const Parallel& par, int64_t total, int64_t min_block,
                            const std::function<void(int64_t, int64_t)>& fn) {
  if (total <= 0) return;
  if (min_block < 1) min_block = 1;
  const int64_t max_blocks = 256;
  int64_t blocks = total / min_block;
  if (blocks < 1) blocks = 1;
  if (blocks > max_blocks) blocks = max_blocks;
  if (blocks == 1) {
    fn(0, total);
    return;
  }
  const int64_t base = total / blocks, extra = total % blocks;
  par.run(static_cast<size_t>(blocks), [&](size_t b) {
    const int64_t bi = static_cast<int64_t>(b);
    const int64_t begin = bi * base + (bi < extra ? bi : extra);
    const int64_t end = begin + base + (bi < extra ? 1 : 0);
    fn(begin, end);
  });
}

}  // namespace vampnet
