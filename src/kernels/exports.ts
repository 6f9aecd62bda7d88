/**
 * The contract between the host and `assembly/`: every kernel the WASM
 * module exports, with its arguments. Pointers are byte offsets into linear
 * memory (the host allocates them); sizes are element counts. Kernels never
 * allocate and never check sizes: the TypeScript entry points do that once.
 *
 * Layouts:
 * - matrices are row-major; W is `rows × cols`, so `y = W x` has `rows`
 *   outputs; batched inputs are `m` vectors of `cols`, one after another,
 *   and batched outputs put vector j's results at `y + 4 * j * ldy`.
 * - q8_0 is GGUF's layout: blocks of 34 bytes, an f16 scale `d` then 32 int8
 *   values `q`, standing for `d * q[i]`. A q8_0 row of `cols` (a multiple of
 *   32) takes `cols / 32 * 34` bytes.
 * - the PRNG state is 16 bytes (xoshiro128**), owned by the host.
 */
export interface KernelExports {
  /** First byte after the module's static data: where the host heap starts. */
  heap_base(): number;

  // --- matmul (assembly/matmul.ts) ---
  // matvec/matmul, f32 and q8_0 alike, sum every output in one fixed order:
  // y[j, r] has the same bits from matvec or matmul, for any m, and for any
  // range of rows the call is given (so rows can be split between threads).
  /** y[r] = Σ_c W[r, c] · x[c] */
  matvec_f32(y: number, w: number, x: number, rows: number, cols: number): void;
  /** y[j, r] = Σ_c W[r, c] · x[j, c] for j < m (m = 1..16), reading W once. */
  matmul_f32(
    y: number,
    w: number,
    x: number,
    rows: number,
    cols: number,
    m: number,
    ldy: number,
  ): void;

  // --- q8_0 (assembly/q8.ts) ---
  /**
   * Quantizes n floats (n a multiple of 32) to n / 32 q8_0 blocks, exactly as
   * ggml's quantize_row_q8_0_ref: d = amax / 127, q = roundf(x · (1 / d)).
   */
  quantize_q8_0(out: number, x: number, n: number): void;
  /** Expands n / 32 q8_0 blocks to n floats. */
  dequantize_q8_0(out: number, q: number, n: number): void;
  /** y = W x with W and x both q8_0 (x quantized by quantize_q8_0). */
  matvec_q8_0(
    y: number,
    w: number,
    xq: number,
    rows: number,
    cols: number,
  ): void;
  /** Batched form: xq holds m quantized vectors of cols each. */
  matmul_q8_0(
    y: number,
    w: number,
    xq: number,
    rows: number,
    cols: number,
    m: number,
    ldy: number,
  ): void;

  // --- f16 (assembly/f16.ts) ---
  f16_to_f32(out: number, src: number, n: number): void;
  /** Round to nearest even; overflow gives ±inf, NaN stays NaN. */
  f32_to_f16(out: number, src: number, n: number): void;

  // --- softmax and friends (assembly/softmax.ts) ---
  /** out = softmax(x / temperature); out may equal x. */
  softmax_f32(out: number, x: number, n: number, temperature: number): void;
  /** out = log softmax(x / temperature); out may equal x. */
  log_softmax_f32(out: number, x: number, n: number, temperature: number): void;
  /** Index of the largest value, the first one on ties; -1 when n = 0. */
  argmax_f32(x: number, n: number): number;
  /**
   * The k largest values, highest first (ties: lower index first), written
   * as indices (i32) and values (f32); returns how many were written,
   * min(k, n).
   */
  topk_f32(idx: number, val: number, x: number, n: number, k: number): number;

  // --- norms and activations (assembly/norm.ts, assembly/activation.ts) ---
  /** out = x / sqrt(mean(x²) + eps) · weight */
  rmsnorm_f32(
    out: number,
    x: number,
    weight: number,
    n: number,
    eps: number,
  ): void;
  /** out = (x − mean) / sqrt(var + eps) · weight + bias; weight/bias 0 = none */
  layernorm_f32(
    out: number,
    x: number,
    weight: number,
    bias: number,
    n: number,
    eps: number,
  ): void;
  silu_f32(out: number, x: number, n: number): void;
  /** GELU, tanh approximation (as GPT-2 and DiT use it). */
  gelu_f32(out: number, x: number, n: number): void;
  /** out = silu(gate) · up */
  swiglu_f32(out: number, gate: number, up: number, n: number): void;
  add_f32(out: number, a: number, b: number, n: number): void;
  mul_f32(out: number, a: number, b: number, n: number): void;
  /** out = a · s */
  scale_f32(out: number, a: number, s: number, n: number): void;

  // --- RoPE and attention (assembly/attention.ts) ---
  /**
   * Rotates, in place, `heads` heads of `headDim` floats (contiguous) for
   * position `pos`: each adjacent pair (2i, 2i+1) turns by the angle
   * pos · theta^(−2i / headDim), as llama2.c and GGUF's llama (rope type 0) do.
   */
  rope_f32(
    x: number,
    heads: number,
    headDim: number,
    pos: number,
    theta: number,
  ): void;
  /**
   * Single-query attention for one KV head and the `group` query heads that
   * share it. q: group × headDim; key t at k + 4 · t · kvStride (headDim
   * floats), value likewise; positions 0..nPos−1 are attended. Scores are
   * scaled by 1/sqrt(headDim). scratch: nPos floats. out: group × headDim.
   */
  attention_f32(
    out: number,
    q: number,
    k: number,
    v: number,
    scratch: number,
    group: number,
    headDim: number,
    nPos: number,
    kvStride: number,
  ): void;

  // --- noise (assembly/noise.ts) ---
  /** Seeds the 16-byte xoshiro128** state from a 64-bit seed via SplitMix64. */
  rng_seed(state: number, seedLo: number, seedHi: number): void;
  rng_next_u32(state: number): number;
  /** Uniform floats in [0, 1). */
  rng_uniform_f32(state: number, out: number, n: number): void;
  /** Normal floats with the given mean and standard deviation. */
  rng_normal_f32(
    state: number,
    out: number,
    n: number,
    mean: number,
    std: number,
  ): void;
  /** Draws an index i with probability p[i] / Σp. */
  rng_categorical_f32(state: number, p: number, n: number): number;

  // ===== Training (images; assembly/train_*.ts) =====
  // Row-major matrices with element strides (lda, ldb, ldc). beta = 0
  // overwrites C, otherwise C = beta · C + product. Outputs named d… that are
  // parameter gradients accumulate (+=); activation gradients overwrite.

  /** C (m × n) = beta · C + A (m × k) · B (k × n). */
  gemm_nn_f32(
    c: number,
    a: number,
    b: number,
    m: number,
    n: number,
    k: number,
    lda: number,
    ldb: number,
    ldc: number,
    beta: number,
  ): void;
  /** C (m × n) = beta · C + Aᵀ · B with A (k × m), B (k × n): weight gradients. */
  gemm_tn_f32(
    c: number,
    a: number,
    b: number,
    m: number,
    n: number,
    k: number,
    lda: number,
    ldb: number,
    ldc: number,
    beta: number,
  ): void;
  /**
   * C (m × n) = beta · C + A (m × k) · Bᵀ with B (n × k): a linear layer's
   * forward, X · Wᵀ. scratch: k · n floats (receives Bᵀ).
   */
  gemm_nt_f32(
    c: number,
    a: number,
    b: number,
    scratch: number,
    m: number,
    n: number,
    k: number,
    lda: number,
    ldb: number,
    ldc: number,
    beta: number,
  ): void;
  /** Per row: out = (x − mean) · rstd, rstd = 1/sqrt(var + eps) saved per row. */
  layernorm_rows_f32(
    out: number,
    rstd: number,
    x: number,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** dx = rstd · (dy − mean(dy) − xhat · mean(dy · xhat)); dx may equal dy. */
  layernorm_rows_backward_f32(
    dx: number,
    dy: number,
    xhat: number,
    rstd: number,
    rows: number,
    cols: number,
  ): void;
  /** out[r] = x[r] · (1 + scale) + shift (adaLN), shift/scale: cols floats. */
  modulate_f32(
    out: number,
    x: number,
    shift: number,
    scale: number,
    rows: number,
    cols: number,
  ): void;
  /** dx = dy · (1 + scale); dshift += Σ_r dy; dscale += Σ_r dy · x. */
  modulate_backward_f32(
    dx: number,
    dshift: number,
    dscale: number,
    dy: number,
    x: number,
    scale: number,
    rows: number,
    cols: number,
  ): void;
  /** h[r] += gate ⊙ y[r]. */
  gate_add_f32(
    h: number,
    gate: number,
    y: number,
    rows: number,
    cols: number,
  ): void;
  /** dy = gate ⊙ dh; dgate += Σ_r dh ⊙ y. */
  gate_add_backward_f32(
    dy: number,
    dgate: number,
    dh: number,
    y: number,
    gate: number,
    rows: number,
    cols: number,
  ): void;
  /** y[r] += b. */
  bias_add_f32(y: number, b: number, rows: number, cols: number): void;
  /** out += Σ_r x[r]. */
  sum_rows_f32(out: number, x: number, rows: number, cols: number): void;
  /**
   * GELU, the tanh approximation of gelu_f32, computed four lanes at a time
   * with a polynomial exp (relative error ~1e-7): the DiT MLP's hot path.
   */
  gelu_fast_f32(out: number, x: number, n: number): void;
  /** dx = dy · gelu'(x), the backward of gelu_f32 / gelu_fast_f32; dx may equal dy. */
  gelu_backward_f32(dx: number, x: number, dy: number, n: number): void;
  /** dx = dy · silu'(x), the backward of silu_f32; dx may equal dy. */
  silu_backward_f32(dx: number, x: number, dy: number, n: number): void;
  /** out[i] = table[idx[i]] (idx: i32), rows of cols floats. */
  embedding_f32(
    out: number,
    table: number,
    idx: number,
    n: number,
    cols: number,
  ): void;
  /** dtable[idx[i]] += dy[i]. */
  embedding_backward_f32(
    dtable: number,
    idx: number,
    dy: number,
    n: number,
    cols: number,
  ): void;
  /** Returns Σ (pred − target)²; grad = gradScale · (pred − target). */
  mse_loss_f32(
    grad: number,
    pred: number,
    target: number,
    n: number,
    gradScale: number,
  ): number;
  /** Returns Σ_r −log p[label_r] (labels: i32); dlogits = (p − onehot) · gradScale. */
  softmax_xent_f32(
    dlogits: number,
    logits: number,
    labels: number,
    rows: number,
    cols: number,
    gradScale: number,
  ): number;
  /** Σ x² (accumulated in f64). */
  sumsq_f32(x: number, n: number): number;
  /**
   * AdamW step: g' = g · gradScale; m, v updated in place;
   * p −= lr · (m / bc1 / (sqrt(v / bc2) + eps) + wd · p).
   */
  adamw_f32(
    p: number,
    g: number,
    m: number,
    v: number,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
    gradScale: number,
  ): void;
  /** avg = decay · avg + (1 − decay) · x. */
  ema_f32(avg: number, x: number, n: number, decay: number): void;
  /**
   * Full self-attention per image and head. qkv: batch · tokens rows of
   * 3 · dim (q | k | v, each heads × headDim); out: rows of dim; probs:
   * batch × heads × tokens × tokens (saved for the backward); scratch:
   * headDim · tokens floats. Scores scaled by 1/sqrt(headDim).
   */
  mha_forward_f32(
    out: number,
    probs: number,
    qkv: number,
    scratch: number,
    batch: number,
    tokens: number,
    heads: number,
    headDim: number,
  ): void;
  /** dqkv (layout of qkv, overwritten) from dout; scratch: tokens² + headDim · tokens floats. */
  mha_backward_f32(
    dqkv: number,
    dout: number,
    qkv: number,
    probs: number,
    scratch: number,
    batch: number,
    tokens: number,
    heads: number,
    headDim: number,
  ): void;
}
