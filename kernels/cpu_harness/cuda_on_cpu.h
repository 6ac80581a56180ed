// cuda_on_cpu.h — run CUDA kernels on the CPU, so that their logic is tested without a GPU.
//
// Include this header, then the .cu file, and compile as C++17 with OpenMP:
//     g++ -std=c++17 -fopenmp -O2 -ffp-contract=off -shared -fPIC launcher.cpp -o harness.so
//
// How a launch maps to the CPU (cuda_cpu_launch below):
//   * the blocks of the grid run one after another, in a loop;
//   * the threads of a block are an OpenMP team of blockDim.x * blockDim.y * blockDim.z threads,
//     so __syncthreads() is an OpenMP barrier;
//   * __shared__ arrays become static storage, which every thread of the team sees, as in a block;
//   * threadIdx and blockIdx are thread-local variables set by each team thread; blockDim and
//     gridDim are ordinary globals;
//   * __popcll is __builtin_popcountll; __fmul_rn / __fadd_rn are plain float operations (compile
//     with -ffp-contract=off so that the compiler does not fuse them either).
// What it cannot run: warp intrinsics, atomics, dynamic shared memory, a __syncthreads() that not
// every thread reaches (undefined in CUDA too), more threads per block than the OS allows.
#pragma once

#include <omp.h>

struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

inline thread_local dim3 threadIdx;
inline thread_local dim3 blockIdx;
inline dim3 blockDim;
inline dim3 gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() _Pragma("omp barrier")

inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }

// Launch `kernel` on `grid` x `block` CPU threads, like kernel<<<grid, block>>>(args...).
// Returns 0, or -1 when OpenMP could not give the block its full team of threads.
template <typename... Params, typename... Args>
int cuda_cpu_launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args... args)
{
    int team = (int)(block.x * block.y * block.z);
    int status = 0;
    gridDim = grid;
    blockDim = block;
    omp_set_dynamic(0);
#pragma omp parallel num_threads(team)
    {
        if (omp_get_num_threads() != team) {
#pragma omp single
            status = -1;
        } else {
            int t = omp_get_thread_num();
            threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
            for (unsigned int bz = 0; bz < grid.z; ++bz)
                for (unsigned int by = 0; by < grid.y; ++by)
                    for (unsigned int bx = 0; bx < grid.x; ++bx) {
                        blockIdx = dim3(bx, by, bz);
                        kernel(args...);
                        // the whole block is done before the next one reuses the shared arrays
#pragma omp barrier
                    }
        }
    }
    return status;
}
