/**
 * Speculative decoding: a drafter proposes up to k tokens, the target scores
 * [unfed context tokens (normally just the last one), d1..dk] in ONE batched
 * pass, and the longest prefix it agrees with is kept plus one token of the
 * target's own. The model never knows: it only sees `forwardBatch` at some
 * position, and a KV cache addressed by position rolls back by continuing
 * from an earlier one.
 *
 * Greedy: keep d_i while it equals the target's argmax; the first
 * disagreement is replaced by that argmax. Output equals plain greedy token
 * for token, provided a batched forward gives bit-identical logits to a
 * single-token one (tests/generate check exactly that).
 *
 * Sampling (Leviathan et al. 2023, Chen et al. 2023): accept d with
 * probability min(1, p(d)/q(d)); on rejection draw from
 * normalize(max(0, p − q)); after k acceptances draw a bonus token from p at
 * the last row. p and q both come from Sampler.distribution, so penalty,
 * top-k, temperature, min-p and top-p shape both, and every emitted token is
 * distributed exactly as plain sampling from p would give it. All coins come
 * from the run's coin (the WASM PRNG), so a seed reproduces a run.
 */
import { SeerError } from "../errors.ts";
import {
  argmax,
  type Candidates,
  draw,
  Sampler,
  type SamplingParams,
} from "../sampling/sampler.ts";
import type { Decoder } from "./decoder.ts";

/** What speculation needs of a model; LlamaModel is one. */
export interface ScoringModel {
  readonly contextLength: number;
  readonly config: { readonly vocabSize: number };
  forward(token: number, pos: number): Float32Array;
  forwardBatch(
    tokens: ArrayLike<number>,
    pos: number,
    all?: boolean,
  ): Float32Array;
}

/** A drafter's proposal. */
export interface Draft {
  tokens: number[];
  /**
   * Per token, the distribution it was drawn from; null when it was chosen
   * deterministically (q is then one-hot on the token).
   */
  q: (Candidates | null)[];
}

/** What the target made of a draft, for drafters that learn from it. */
export interface Verdict {
  /** Position of batch[0]. */
  start: number;
  /** The tokens the target ran: unfed context tokens, then the draft. */
  batch: readonly number[];
  /** batch.length × vocab logits; row i predicts position start + i + 1. */
  logits: Float32Array;
  vocab: number;
  /** Context length before this step. */
  contextLength: number;
  drafted: number;
  accepted: number;
  /** The tokens this step returns (accepted drafts, then the target's own). */
  emitted: readonly number[];
}

export interface Drafter {
  readonly name: string;
  /**
   * Cost of drafting one token relative to one decode step of the target
   * (weights read per token, the bound on small batches); picks k.
   */
  readonly cost: number;
  /** True when the drafter picks its own k (multi): it gets the hard limit. */
  readonly adaptsK?: boolean;
  prefill?(prompt: readonly number[]): void;
  /** Up to k tokens continuing `context`; none when it has no proposal. */
  propose(context: readonly number[], k: number): Draft;
  observe?(verdict: Verdict): void;
  stats?(): Record<string, number>;
  dispose?(): void;
}

/**
 * How tokens are chosen at one position, given the tokens before it. The
 * loop's sampler learns the context through `accept`; speculation scores
 * positions whose history includes drafted tokens, so it keeps a shadow
 * sampler with the same parameters and replays the last `repetitionLastN`
 * tokens into it when (and only when) the repetition penalty makes history
 * matter.
 */
export class Policy {
  readonly params: SamplingParams;
  readonly #sampler: Sampler;
  readonly #historyMatters: boolean;

  constructor(params: Partial<SamplingParams>) {
    this.#sampler = new Sampler(params);
    this.params = this.#sampler.params;
    this.#historyMatters = this.params.repetitionPenalty !== 1 &&
      this.params.repetitionLastN > 0;
  }

  get greedy(): boolean {
    return this.#sampler.greedy;
  }

  #replay(history: readonly number[], extra: readonly number[]): void {
    if (!this.#historyMatters) return;
    const s = this.#sampler;
    s.reset();
    const n = this.params.repetitionLastN;
    const total = history.length + extra.length;
    for (let i = Math.max(0, total - n); i < total; i++) {
      s.accept(i < history.length ? history[i] : extra[i - history.length]);
    }
  }

  /** The distribution at the position after `history` then `extra`. */
  distribution(
    logits: ArrayLike<number>,
    history: readonly number[],
    extra: readonly number[] = [],
  ): Candidates {
    this.#replay(history, extra);
    return this.#sampler.distribution(logits);
  }

  /** The greedy choice there (what plain greedy decoding picks). */
  best(
    logits: ArrayLike<number>,
    history: readonly number[],
    extra: readonly number[] = [],
  ): number {
    if (!this.#historyMatters) return argmax(logits, logits.length);
    return this.distribution(logits, history, extra).ids[0];
  }
}

/** Dense per-token scratch for looking up q by id. */
export class Dense {
  readonly values: Float32Array;
  constructor(vocab: number) {
    this.values = new Float32Array(vocab);
  }
  fill(c: Candidates): void {
    for (let i = 0; i < c.n; i++) this.values[c.ids[i]] = c.values[i];
  }
  clear(c: Candidates): void {
    for (let i = 0; i < c.n; i++) this.values[c.ids[i]] = 0;
  }
}

/** The outcome at one drafted position. */
export interface Acceptance {
  token: number;
  accepted: boolean;
}

/**
 * The acceptance rule at one position: target distribution p, drafted token
 * d drawn from q (null: one-hot). Replaceable only so a test can check that
 * the distribution test catches a broken rule.
 */
export type AcceptRule = (
  p: Candidates,
  q: Candidates | null,
  d: number,
  coin: () => number,
  scratch: Dense,
) => Acceptance;

/**
 * Accept d with probability min(1, p(d)/q(d)); otherwise draw from
 * normalize(max(0, p − q)). Then P(emit x) = min(p, q)(x) + (1 − Σ min(p, q))
 * · (p − q)⁺(x) / Σ(p − q)⁺ = p(x), since Σ(p − q)⁺ = 1 − Σ min(p, q).
 */
export const acceptOrResample: AcceptRule = (p, q, d, coin, scratch) => {
  let pd = 0;
  for (let i = 0; i < p.n; i++) {
    if (p.ids[i] === d) {
      pd = p.values[i];
      break;
    }
  }
  let qd = 1;
  if (q) {
    scratch.fill(q);
    qd = scratch.values[d];
  } else {
    scratch.values[d] = 1;
  }
  try {
    // No coin when p(d) ≥ q(d): acceptance is certain.
    if (qd > 0 && (pd >= qd || coin() * qd < pd)) {
      return { token: d, accepted: true };
    }
    let sum = 0;
    for (let i = 0; i < p.n; i++) {
      sum += Math.max(0, p.values[i] - scratch.values[p.ids[i]]);
    }
    // A rejection implies q(d) > p(d), so Σ(p − q)⁺ = Σ(q − p)⁺ > 0 in
    // exact arithmetic; rounding can only leave it at 0 when p ≈ q, where
    // p itself is the right fallback.
    if (!(sum > 0)) return { token: draw(p, coin()), accepted: false };
    const u = coin() * sum;
    let cdf = 0;
    let last = p.ids[0];
    for (let i = 0; i < p.n; i++) {
      const r = Math.max(0, p.values[i] - scratch.values[p.ids[i]]);
      if (r <= 0) continue;
      cdf += r;
      last = p.ids[i];
      if (u < cdf) return { token: p.ids[i], accepted: false };
    }
    return { token: last, accepted: false };
  } finally {
    if (q) scratch.clear(q);
    else scratch.values[d] = 0;
  }
};

/**
 * Draft length from recent acceptance. Acceptance of each drafted token is
 * modelled as a coin with probability α (estimated from exponentially
 * decayed counts of accepted and rejected drafts: the maximum-likelihood
 * estimate for that model). A step drafting k tokens then emits
 * E(k) = (1 − α^(k+1)) / (1 − α) tokens on average and costs
 * 1 + (rowCost + draftCost) · k target steps; k maximises E(k) / cost.
 * It depends on acceptance only, never on wall time, so a seed still
 * reproduces a run.
 */
export class AdaptiveK {
  #accepted: number;
  #rejected: number;
  #skipped = 0;

  constructor(
    readonly kMax: number,
    readonly draftCost: number,
    readonly rowCost: number,
    readonly prior = 0.5,
    readonly decay = 0.9,
  ) {
    // Two pseudo-observations of the prior, so the first steps explore.
    this.#accepted = 2 * prior;
    this.#rejected = 2 * (1 - prior);
  }

  get alpha(): number {
    return this.#accepted / (this.#accepted + this.#rejected);
  }

  update(accepted: number, drafted: number): void {
    if (drafted === 0) return;
    this.#accepted = this.#accepted * this.decay + accepted;
    this.#rejected = this.#rejected * this.decay +
      (accepted < drafted ? 1 : 0);
  }

  /** Lets an unused estimate drift back to the prior (multi: re-try it). */
  forget(rate: number): void {
    const w = this.#accepted + this.#rejected;
    this.#accepted += (this.prior * w - this.#accepted) * rate;
    this.#rejected += ((1 - this.prior) * w - this.#rejected) * rate;
  }

  /** Expected tokens per unit cost when drafting k. */
  value(k: number): number {
    const a = Math.min(this.alpha, 1 - 1e-9);
    const tokens = (1 - a ** (k + 1)) / (1 - a);
    return tokens / (1 + (this.rowCost + this.draftCost) * k);
  }

  /**
   * The draft length for the next step: the best k, or 0 (a plain step)
   * when no k is expected to beat plain decoding. After PROBE_AFTER plain
   * steps in a row it drafts anyway, so a drafter whose luck turned is
   * noticed.
   */
  decide(limit = this.kMax): number {
    const k = this.best(limit);
    if (this.value(k) >= 1 || ++this.#skipped > PROBE_AFTER) {
      this.#skipped = 0;
      return k;
    }
    return 0;
  }

  /** The best k in 1..limit (limit defaults to kMax). */
  best(limit = this.kMax): number {
    let best = 1;
    let bestValue = -Infinity;
    for (let k = 1; k <= Math.min(limit, this.kMax); k++) {
      const v = this.value(k);
      if (v > bestValue) {
        best = k;
        bestValue = v;
      }
    }
    return best;
  }
}

/**
 * Cost of one more verified row relative to one decode step. The batched
 * kernels read each weight once for all rows, so a row adds arithmetic and
 * per-row work (attention, norms) only: bench/speculative.ts measured
 * 0.3-0.4 per row at 42M single-thread, more on tiny models where per-row
 * work is most of a step (bench/RESULTS.md).
 */
export const DEFAULT_ROW_COST = 0.35;

/** Steps without drafting (no k expected to pay) before drafting once anyway. */
export const PROBE_AFTER = 16;

export interface SpeculativeOptions {
  /** Longest draft; with `adaptive` the draft length moves within 1..k. */
  k: number;
  adaptive: boolean;
  /** Ids that end generation: a draft is cut after the first one. */
  stopTokens?: readonly number[];
  rowCost?: number;
  /** Decoder name in stats and logs. */
  name?: string;
  /** Replaceable only to test the statistical test; see AcceptRule. */
  rule?: AcceptRule;
  now?: () => number;
  /** Disposed with the decoder (forked drafter models and the like). */
  owned?: { dispose(): void }[];
}

/** Length of the longest common prefix of a and b. */
export function commonPrefix(
  a: readonly number[],
  b: readonly number[],
): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export const MAX_DRAFT = 32;

export function checkK(k: number, what = "draft length k"): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_DRAFT) {
    throw new SeerError(
      "invalid_argument",
      `${what} must be an integer from 1 to ${MAX_DRAFT}, got ${k}`,
    );
  }
}

export class SpeculativeDecoder implements Decoder {
  readonly name: string;
  readonly #policy: Policy;
  readonly #tuner: AdaptiveK;
  readonly #rule: AcceptRule;
  readonly #scratch: Dense;
  readonly #stops: ReadonlySet<number>;
  readonly #now: () => number;
  /** Tokens whose keys and values are in the target's cache, by position. */
  #fed: number[] = [];
  #stats = {
    drafted_tokens: 0,
    accepted_tokens: 0,
    emitted_tokens: 0,
    target_passes: 0,
    draft_ms: 0,
    verify_ms: 0,
  };

  constructor(
    private readonly target: ScoringModel,
    private readonly drafter: Drafter,
    sampler: Pick<Sampler, "params">,
    private readonly coin: () => number,
    private readonly options: SpeculativeOptions,
  ) {
    checkK(options.k);
    this.name = options.name ?? `speculative:${drafter.name}`;
    this.#policy = new Policy(sampler.params);
    this.#tuner = new AdaptiveK(
      options.k,
      drafter.cost,
      options.rowCost ?? DEFAULT_ROW_COST,
    );
    this.#rule = options.rule ?? acceptOrResample;
    this.#scratch = new Dense(target.config.vocabSize);
    this.#stops = new Set(options.stopTokens ?? []);
    this.#now = options.now ?? (() => performance.now());
  }

  prefill(prompt: readonly number[]): void {
    // All but the last prompt token: the last one leads the first verify
    // batch, whose first row gives the logits after the prompt.
    const n = prompt.length - 1;
    const c = Math.min(commonPrefix(this.#fed, prompt), n);
    if (c < n) this.target.forwardBatch(prompt.slice(c, n), c);
    this.#fed = prompt.slice(0, n);
    this.drafter.prefill?.(prompt);
  }

  next(context: readonly number[], max: number): number[] {
    const n = context.length;
    // Roll back to what the cache and the context share; the last context
    // token is always fed again so its row gives the next logits.
    const c = Math.min(commonPrefix(this.#fed, context), n - 1);
    // Drafts take positions n..n+k-1, and the step may return k + 1 tokens.
    const limit = Math.max(
      0,
      Math.min(max - 1, this.target.contextLength - n, MAX_DRAFT),
    );
    let want = Math.min(limit, this.options.k);
    if (this.options.adaptive && !this.drafter.adaptsK && limit > 0) {
      want = this.#tuner.decide(limit);
    }

    const t0 = this.#now();
    let draft: Draft = { tokens: [], q: [] };
    if (want > 0) draft = this.drafter.propose(context, want);
    let k = Math.min(draft.tokens.length, want);
    for (let i = 0; i < k; i++) {
      if (this.#stops.has(draft.tokens[i])) k = i + 1;
    }
    const drafts = draft.tokens.slice(0, k);
    const t1 = this.#now();

    const batch = [...context.slice(c), ...drafts];
    // A single row takes the plain forward (a view, used before the next call).
    const logits = batch.length === 1
      ? this.target.forward(batch[0], c)
      : this.target.forwardBatch(batch, c, true);
    this.#fed.length = c;
    for (const t of batch) this.#fed.push(t);
    const vocab = this.target.config.vocabSize;
    const row = (i: number) =>
      logits.subarray((n - 1 - c + i) * vocab, (n - c + i) * vocab);

    const out: number[] = [];
    let accepted = 0;
    const policy = this.#policy;
    for (let i = 0; i <= k; i++) {
      if (i === k) {
        // Every draft accepted (or none drafted): the target's own token.
        out.push(
          policy.greedy
            ? policy.best(row(i), context, out)
            : sample(policy.distribution(row(i), context, out), this.coin),
        );
        break;
      }
      const d = drafts[i];
      if (policy.greedy) {
        const best = policy.best(row(i), context, out);
        out.push(best);
        if (best !== d) break;
      } else {
        const p = policy.distribution(row(i), context, out);
        const r = this.#rule(p, draft.q[i], d, this.coin, this.#scratch);
        out.push(r.token);
        if (!r.accepted) break;
      }
      accepted++;
      if (this.#stops.has(d)) break;
    }
    const t2 = this.#now();

    const s = this.#stats;
    s.drafted_tokens += k;
    s.accepted_tokens += accepted;
    s.emitted_tokens += out.length;
    s.target_passes++;
    s.draft_ms += t1 - t0;
    s.verify_ms += t2 - t1;
    if (!this.drafter.adaptsK) this.#tuner.update(accepted, k);
    this.drafter.observe?.({
      start: c,
      batch,
      logits,
      vocab,
      contextLength: n,
      drafted: k,
      accepted,
      emitted: out,
    });
    return out;
  }

  stats(): Record<string, number> {
    const s = this.#stats;
    return {
      ...s,
      acceptance_rate: s.drafted_tokens
        ? s.accepted_tokens / s.drafted_tokens
        : 0,
      // Tokens per target pass: accepted drafts plus the target's own.
      mean_accepted_length: s.target_passes
        ? s.emitted_tokens / s.target_passes
        : 0,
      ...this.drafter.stats?.(),
    };
  }

  dispose(): void {
    this.drafter.dispose?.();
    for (const o of this.options.owned ?? []) o.dispose();
  }
}

function sample(c: Candidates, coin: () => number): number {
  return c.n === 1 ? c.ids[0] : draw(c, coin());
}
