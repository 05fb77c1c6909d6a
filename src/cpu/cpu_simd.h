/*
 * cpu_simd.h - compile a hot loop for several instruction sets.
 *
 * MTI_SIMD_CLONES on a function makes GCC build it twice, for x86-64-v3
 * (AVX2, FMA, F16C) and for the baseline, and pick one at load time by the
 * CPU it runs on. Put it on leaf loops only: the threading driver around a
 * loop stays baseline code, and an OpenMP region is never inside a clone.
 */
#ifndef MTI_CPU_SIMD_H
#define MTI_CPU_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(MTI_NO_SIMD_CLONES)
#define MTI_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MTI_SIMD_CLONES
#endif

#endif
