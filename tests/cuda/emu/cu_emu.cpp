/* tests/cuda/emu/cu_emu.cpp — the runtime of cu_emu.h: blocks run one after
 * another, each as blockDim.x host threads; std::barrier for the block and
 * for each warp; the shuffle goes through per-warp slots between two warp
 * barriers (every lane of the warp must take part, as on a GPU). */
#include <barrier>
#include <memory>
#include <thread>
#include <vector>
#include <cu_emu.h>

thread_local cu_emu_dim threadIdx, blockIdx;
cu_emu_dim blockDim, gridDim;
unsigned char *cu_emu_smem_base;
size_t cu_emu_smem_bytes;

static std::unique_ptr<std::barrier<>> block_bar;
static std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
static std::vector<float> shfl;   /* (warps, 32) */

void __syncthreads() { block_bar->arrive_and_wait(); }
void __syncwarp(unsigned) { warp_bar[threadIdx.x / 32]->arrive_and_wait(); }
float __shfl_xor_sync(unsigned, float v, int lane_mask) {
    unsigned w = threadIdx.x / 32, l = threadIdx.x % 32;
    shfl[w * 32 + l] = v;
    __syncwarp();
    float r = shfl[w * 32 + (l ^ (unsigned)lane_mask)];
    __syncwarp();
    return r;
}

void cu_emu_launch(cu_emu_dim grid, unsigned threads, size_t smem_bytes, const std::function<void()> &kernel) {
    if (threads % 32) { fprintf(stderr, "cu_emu: %u threads: not whole warps\n", threads); abort(); }
    std::vector<unsigned char> buf(smem_bytes + 256);
    cu_emu_smem_base = (unsigned char *)(((uintptr_t)buf.data() + 127) & ~(uintptr_t)127);
    cu_emu_smem_bytes = smem_bytes;
    blockDim = { threads, 1, 1 };
    gridDim = grid;
    shfl.assign(threads, 0.0f);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                memset(cu_emu_smem_base, 0xff, smem_bytes);   /* NaN in bf16 and in float */
                block_bar = std::make_unique<std::barrier<>>(threads);
                warp_bar.clear();
                for (unsigned w = 0; w < threads / 32; w++) warp_bar.push_back(std::make_unique<std::barrier<>>(32));
                std::vector<std::thread> th;
                for (unsigned t = 0; t < threads; t++)
                    th.emplace_back([&, t, x, y, z] {
                        threadIdx = { t, 0, 0 };
                        blockIdx = { x, y, z };
                        kernel();
                    });
                for (auto &t : th) t.join();
            }
}
