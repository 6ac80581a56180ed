// launcher.cpp — C entry points that run the kernels of xnor.cu on the CPU (see cuda_on_cpu.h).
// Built at test time by kernels/harness.py; every function takes the grid and block as arrays of
// three unsigned ints followed by the kernel's own arguments, and returns 0 on success.
#include "cuda_on_cpu.h"
#include "xnor.cu"

#define LAUNCH(kernel, ...) \
    cuda_cpu_launch(kernel, dim3(grid[0], grid[1], grid[2]), dim3(block[0], block[1], block[2]), \
                    __VA_ARGS__)

extern "C" {

int launch_pack_rows(const unsigned* grid, const unsigned* block, const unsigned char* bits,
                     int rows, int length, int words, u64* packed)
{
    return LAUNCH(pack_rows, bits, rows, length, words, packed);
}

int launch_im2col_pack(const unsigned* grid, const unsigned* block, const unsigned char* bits,
                       int batch, int channels, int hp, int wp, int kh, int kw, int stride_h,
                       int stride_w, int out_h, int out_w, int words, u64* patches)
{
    return LAUNCH(im2col_pack, bits, batch, channels, hp, wp, kh, kw, stride_h, stride_w, out_h,
                  out_w, words, patches);
}

int launch_xnor_gemm(const unsigned* grid, const unsigned* block, const u64* a, const u64* b,
                     int* dots, int m, int n, int words, int k)
{
    return LAUNCH(xnor_gemm, a, b, dots, m, n, words, k);
}

int launch_conv_epilogue_dots(const unsigned* grid, const unsigned* block, const int* dots,
                              const int* correction, int batch, int n, int positions, int* out)
{
    return LAUNCH(conv_epilogue_dots, dots, correction, batch, n, positions, out);
}

int launch_conv_epilogue_affine(const unsigned* grid, const unsigned* block, const int* dots,
                                const int* correction, const float* scale, const float* bias,
                                int batch, int n, int positions, float* out)
{
    return LAUNCH(conv_epilogue_affine, dots, correction, scale, bias, batch, n, positions, out);
}

int launch_conv_epilogue_threshold(const unsigned* grid, const unsigned* block, const int* dots,
                                   const int* correction, const int* flip, const int* threshold,
                                   int batch, int n, int out_h, int out_w, int words, u64* out)
{
    return LAUNCH(conv_epilogue_threshold, dots, correction, flip, threshold, batch, n, out_h,
                  out_w, words, out);
}

}  // extern "C"
