// The one WASM module: every kernel file re-exported. Kernels know nothing
// about models; their contract (arguments, layouts) is src/kernels/exports.ts.

/** First byte after static data: the host's heap starts here. */
export function heap_base(): usize {
  return __heap_base;
}

export * from "./matmul";
export * from "./q8";
export * from "./f16";
export * from "./softmax";
export * from "./norm";
export * from "./activation";
export * from "./attention";
export * from "./noise";

// Training (images): GEMM for many rows and the backward of every op a DiT uses.
export { gemm_nn_f32, gemm_nt_f32, gemm_tn_f32 } from "./train_matmul";
export * from "./train_ops";
export * from "./train_attention";
