// xnor.cu — the CUDA kernels of tinybnn's "cupy" backend.
//
// One source, compiled three ways:
//   * at run time by NVRTC, through cupy.RawModule (kernels/gpu.py launches them);
//   * by nvcc for sm_80 / sm_90 in the tests (tests/kernels/test_cuda_source.py), no GPU needed;
//   * by g++ as C++, with cpu_harness/cuda_on_cpu.h mapping the CUDA built-ins to OpenMP, so the
//     tests run these very kernels on the CPU and compare them bit for bit with NumPy.
// So the kernels keep to what that harness can run: blockIdx / threadIdx / blockDim / gridDim,
// __shared__ arrays, __syncthreads() reached by every thread of a block, __popcll, __fmul_rn,
// __fadd_rn. No headers, no templates, no atomics, no warp intrinsics.
//
// Bit conventions (DESIGN.md): bits are packed along the reduction axis into 64-bit words; element
// e is bit e % 64 of word e / 64; bit 1 = +1, bit 0 = -1; padding bits are 0 in both operands, so
// dot(a, b) = k - 2 * popcount(a XOR b).
//
// Array layouts are row-major (C order); sizes are int, offsets long long.

typedef unsigned long long u64;

#define TILE 16   // xnor_gemm: a block of TILE x TILE threads computes TILE x TILE dots


// pack_rows: bits (rows, length) bytes, 0 or 1  ->  packed (rows, words) u64.
// One thread per output word, grid-stride loop (any grid size works).
extern "C" __global__ void pack_rows(const unsigned char* __restrict__ bits, int rows, int length,
                                     int words, u64* __restrict__ packed)
{
    long long total = (long long)rows * words;
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < total;
         index += step) {
        long long row = index / words;
        int first = (int)(index % words) * 64;
        const unsigned char* source = bits + row * length;
        u64 word = 0;
        for (int bit = 0; bit < 64 && first + bit < length; ++bit) {
            if (source[first + bit]) word |= 1ULL << bit;
        }
        packed[index] = word;
    }
}


// im2col_pack: fused im2col + packing for a binary convolution.
// bits (batch, channels, hp, wp) bytes 0/1: the binarized input with its padding in place.
// patches (batch * out_h * out_w, words) u64: row (b, ho, wo) holds the patch of that output
// position in (c, i, j) order, the order of a PyTorch weight reshaped to (Cout, C * kh * kw).
// One thread per output word, grid-stride loop.
extern "C" __global__ void im2col_pack(const unsigned char* __restrict__ bits, int batch,
                                       int channels, int hp, int wp, int kh, int kw,
                                       int stride_h, int stride_w, int out_h, int out_w, int words,
                                       u64* __restrict__ patches)
{
    int taps = kh * kw;
    int k = channels * taps;
    long long total = (long long)batch * out_h * out_w * words;
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < total;
         index += step) {
        long long position = index / words;          // (b, ho, wo) flattened
        int first = (int)(index % words) * 64;       // first patch element of this word
        int wo = (int)(position % out_w);
        int ho = (int)((position / out_w) % out_h);
        long long b = position / ((long long)out_w * out_h);
        u64 word = 0;
        for (int bit = 0; bit < 64 && first + bit < k; ++bit) {
            int e = first + bit;
            int c = e / taps;
            int i = (e % taps) / kw;
            int j = e % kw;
            long long source = ((b * channels + c) * hp + ho * stride_h + i) * wp
                               + (long long)wo * stride_w + j;
            if (bits[source]) word |= 1ULL << bit;
        }
        patches[index] = word;
    }
}


// xnor_gemm: dots (m, n) int = k - 2 * popcount(a[row] XOR b[col]), a (m, words), b (n, words).
// Grid (ceil(n / TILE), ceil(m / TILE)), block (TILE, TILE). Each block stages TILE words of
// TILE rows of a and of b in shared memory, then every thread XOR-popcounts its row against its
// column. Rows, columns and words past the end are staged as 0 words, which never mismatch.
extern "C" __global__ void xnor_gemm(const u64* __restrict__ a, const u64* __restrict__ b,
                                     int* __restrict__ dots, int m, int n, int words, int k)
{
    __shared__ u64 a_tile[TILE][TILE + 1];   // +1: no shared-memory bank conflicts
    __shared__ u64 b_tile[TILE][TILE + 1];
    int tx = threadIdx.x;
    int ty = threadIdx.y;
    int row = blockIdx.y * TILE + ty;        // this thread's row of a
    int col = blockIdx.x * TILE + tx;        // this thread's row of b (column of the output)
    int b_row = blockIdx.x * TILE + ty;      // the row of b this thread stages
    int mismatches = 0;
    for (int w0 = 0; w0 < words; w0 += TILE) {
        int w = w0 + tx;
        a_tile[ty][tx] = (row < m && w < words) ? a[(long long)row * words + w] : 0ULL;
        b_tile[ty][tx] = (b_row < n && w < words) ? b[(long long)b_row * words + w] : 0ULL;
        __syncthreads();
        for (int t = 0; t < TILE; ++t) {
            mismatches += __popcll(a_tile[ty][t] ^ b_tile[tx][t]);
        }
        __syncthreads();
    }
    if (row < m && col < n) {
        dots[(long long)row * n + col] = k - 2 * mismatches;
    }
}


// The output stages of a convolution. dots (batch * positions, n) is the GEMM of the patches
// with the weights, correction (n, positions) the zero-padding term to subtract (zeros for
// +-1 padding), positions = out_h * out_w. All three write NCHW.

// The corrected dot of output channel c at position p of one image: the GEMM entry minus the
// zero-padding term. dots is (batch * positions, n), correction (n, positions).
__device__ __forceinline__ int corrected_dot(const int* __restrict__ dots,
                                             const int* __restrict__ correction, long long image,
                                             int p, int c, int n, int positions)
{
    return dots[(image * positions + p) * n + c] - correction[(long long)c * positions + p];
}

// The corrected dot of element `index` of an output (batch, n, positions) in NCHW order, and its
// output channel in *channel.
__device__ __forceinline__ int corrected_dot_at(const int* __restrict__ dots,
                                                const int* __restrict__ correction,
                                                long long index, int n, int positions,
                                                int* channel)
{
    int p = (int)(index % positions);
    int c = (int)((index / positions) % n);
    *channel = c;
    return corrected_dot(dots, correction, index / ((long long)positions * n), p, c, n,
                         positions);
}

// conv_epilogue_dots: out (batch, n, positions) int = dot - correction.
extern "C" __global__ void conv_epilogue_dots(const int* __restrict__ dots,
                                              const int* __restrict__ correction, int batch, int n,
                                              int positions, int* __restrict__ out)
{
    long long total = (long long)batch * n * positions;
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < total;
         index += step) {
        int c;
        out[index] = corrected_dot_at(dots, correction, index, n, positions, &c);
    }
}

// conv_epilogue_affine: out (batch, n, positions) float = float(dot) * scale[c] + bias[c],
// rounded after the product and after the sum (no fused multiply-add), like NumPy and Numba.
extern "C" __global__ void conv_epilogue_affine(const int* __restrict__ dots,
                                                const int* __restrict__ correction,
                                                const float* __restrict__ scale,
                                                const float* __restrict__ bias, int batch, int n,
                                                int positions, float* __restrict__ out)
{
    long long total = (long long)batch * n * positions;
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < total;
         index += step) {
        int c;
        int dot = corrected_dot_at(dots, correction, index, n, positions, &c);
        out[index] = __fadd_rn(__fmul_rn((float)dot, scale[c]), bias[c]);
    }
}

// conv_epilogue_threshold: bit = (dot * flip[c] >= threshold[c]), packed along the width:
// out (batch, n, out_h, words) u64 with words = ceil(out_w / 64). One thread per output word.
extern "C" __global__ void conv_epilogue_threshold(const int* __restrict__ dots,
                                                   const int* __restrict__ correction,
                                                   const int* __restrict__ flip,
                                                   const int* __restrict__ threshold, int batch,
                                                   int n, int out_h, int out_w, int words,
                                                   u64* __restrict__ out)
{
    int positions = out_h * out_w;
    long long total = (long long)batch * n * out_h * words;
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long index = (long long)blockIdx.x * blockDim.x + threadIdx.x; index < total;
         index += step) {
        int first = (int)(index % words) * 64;
        int ho = (int)((index / words) % out_h);
        int c = (int)((index / ((long long)words * out_h)) % n);
        long long image = index / ((long long)words * out_h * n);
        u64 word = 0;
        for (int bit = 0; bit < 64 && first + bit < out_w; ++bit) {
            int p = ho * out_w + first + bit;
            int dot = corrected_dot(dots, correction, image, p, c, n, positions);
            if (dot * flip[c] >= threshold[c]) word |= 1ULL << bit;
        }
        out[index] = word;
    }
}
