/**
 * Staged non-autoregressive decoding without training, as drafters for the
 * speculative decoder (which verifies, keeps the agreeing prefix and rolls
 * caches back; the same exactness argument covers all of these):
 *
 * - Jacobi: a window of guesses for the next positions; one target pass
 *   over [last token, guesses] predicts every position at once; the prefix
 *   where guess i equals the prediction after guess i−1 has converged and
 *   is accepted (plus the target's next token), and the remaining
 *   predictions become the next iteration's guesses. Untouched positions
 *   are padded by repeating the last guess.
 * - Lookahead: Jacobi, plus a pool of n-grams read off the Jacobi
 *   trajectories (a token at iteration t was predicted from its left
 *   neighbour at iteration t − 1, so the diagonals are plausible n-grams).
 *   When the pool holds an n-gram starting with the last token, its
 *   continuation leads the window and is verified in the same pass as the
 *   Jacobi guesses behind it. One candidate per pass, laid out linearly
 *   (the attention kernel is causal over contiguous positions, so there is
 *   no tree mask for several branches).
 * - Fixed: a block of k tokens drafted in parallel by a cheaper model in
 *   ONE pass over [last token, guesses] (each row's argmax is that
 *   position's draft), cut after the first END token, then verified.
 *
 * Guesses are argmax predictions, i.e. deterministic: under sampling q is
 * one-hot and the rejection rule keeps the output distribution exact.
 */
import { argmax } from "../sampling/sampler.ts";
import {
  commonPrefix,
  type Draft,
  type Drafter,
  type ScoringModel,
  type Verdict,
} from "./speculative.ts";

/** Window guesses by absolute position, refreshed from each verdict. */
class Guesses {
  readonly #byPos = new Map<number, number>();

  /**
   * k guesses for positions from, from+1, … (from = the length of
   * `context`); gaps repeat the previous token.
   */
  window(context: readonly number[], from: number, k: number): number[] {
    const out: number[] = [];
    let prev = context[from - 1];
    for (let i = 0; i < k; i++) {
      const g = this.#byPos.get(from + i) ?? prev;
      out.push(g);
      prev = g;
    }
    return out;
  }

  /** Keeps the target's predictions for positions past the new context end. */
  update(v: Verdict): void {
    this.#byPos.clear();
    const end = v.contextLength + v.emitted.length;
    for (let i = 0; i < v.batch.length; i++) {
      const pos = v.start + i + 1;
      if (pos < end) continue;
      this.#byPos.set(pos, predict(v, i));
    }
  }
}

function predict(v: Verdict, row: number): number {
  return argmax(v.logits.subarray(row * v.vocab, (row + 1) * v.vocab), v.vocab);
}

function oneHot(tokens: number[]): Draft {
  return { tokens, q: tokens.map(() => null) };
}

export class JacobiDrafter implements Drafter {
  readonly name: string = "jacobi";
  /** The guesses come free with the previous verification pass. */
  readonly cost = 0;
  protected readonly guesses = new Guesses();

  propose(context: readonly number[], k: number): Draft {
    return oneHot(this.guesses.window(context, context.length, k));
  }

  observe(v: Verdict): void {
    this.guesses.update(v);
  }
}

/** Most recent continuations kept per first token. */
const POOL_PER_KEY = 8;

export class LookaheadDrafter extends JacobiDrafter {
  override readonly name = "lookahead";
  /** First token → continuations (n − 1 tokens), most recent first. */
  readonly #pool = new Map<number, number[][]>();
  /** Inputs by position of the last n − 2 iterations, oldest first. */
  #history: Map<number, number>[] = [];
  #hits = 0;
  #hitAccepted = 0;
  #usedPool = false;

  constructor(readonly n: number) {
    super();
  }

  override propose(context: readonly number[], k: number): Draft {
    const len = context.length;
    const candidate = this.#pool.get(context[len - 1])?.[0];
    this.#usedPool = candidate !== undefined;
    if (!candidate) return super.propose(context, k);
    this.#hits++;
    const head = candidate.slice(0, k);
    const tail = this.guesses.window(
      [...context, ...head],
      len + head.length,
      k - head.length,
    );
    return oneHot([...head, ...tail]);
  }

  override observe(v: Verdict): void {
    if (this.#usedPool) this.#hitAccepted += v.accepted;
    const inputs = new Map<number, number>();
    v.batch.forEach((t, i) => inputs.set(v.start + i, t));
    const n = this.n;
    // The diagonal ending at input position p: x[p−n+2] at iteration t−n+2,
    // …, x[p] now, then the prediction for p + 1.
    for (let i = 0; i < v.batch.length; i++) {
      const p = v.start + i;
      const gram: number[] = [];
      for (let back = n - 2; back >= 1; back--) {
        const t = this.#history[this.#history.length - back]?.get(p - back);
        if (t === undefined) break;
        gram.push(t);
      }
      if (gram.length !== n - 2) continue;
      gram.push(v.batch[i], predict(v, i));
      this.#add(gram);
    }
    this.#history.push(inputs);
    if (this.#history.length > Math.max(0, n - 2)) this.#history.shift();
    super.observe(v);
  }

  #add(gram: number[]): void {
    const [first, ...rest] = gram;
    const list = this.#pool.get(first) ?? [];
    const same = list.findIndex((c) => c.every((t, i) => t === rest[i]));
    if (same >= 0) list.splice(same, 1);
    list.unshift(rest);
    if (list.length > POOL_PER_KEY) list.pop();
    this.#pool.set(first, list);
  }

  stats(): Record<string, number> {
    return { pool_hits: this.#hits, pool_hit_accepted: this.#hitAccepted };
  }
}

/**
 * A block drafted in parallel: one pass of the drafter model over
 * [context tokens it has not fed, guesses for positions n..n+k−2], each
 * row's argmax drafting the position after it. The first row sees only
 * real context (an ordinary AR draft); the rest see guesses (the target's
 * last predictions there), which is what makes the block non-autoregressive.
 */
export class FixedDrafter implements Drafter {
  readonly name: string;
  #fed: number[] = [];
  readonly #guesses = new Guesses();
  readonly #stops: ReadonlySet<number>;

  constructor(
    private readonly model: ScoringModel,
    readonly cost: number,
    stopTokens: readonly number[] = [],
    drafterName = "model",
  ) {
    this.name = `fixed(${drafterName})`;
    this.#stops = new Set(stopTokens);
  }

  prefill(prompt: readonly number[]): void {
    const n = prompt.length - 1;
    const c = Math.min(commonPrefix(this.#fed, prompt), n);
    if (c < n) this.model.forwardBatch(prompt.slice(c, n), c);
    this.#fed = prompt.slice(0, n);
  }

  propose(context: readonly number[], k: number): Draft {
    const n = context.length;
    const c = Math.min(commonPrefix(this.#fed, context), n - 1);
    const guesses = this.#guesses.window(context, n, k - 1);
    const batch = [...context.slice(c), ...guesses];
    const logits = this.model.forwardBatch(batch, c, true);
    this.#fed = [...context.slice(0, c), ...batch];
    const vocab = this.model.config.vocabSize;
    const block: number[] = [];
    for (let i = 0; i < k; i++) {
      const row = n - 1 - c + i;
      const d = argmax(logits.subarray(row * vocab, (row + 1) * vocab), vocab);
      block.push(d);
      // END truncation: nothing after an end token can be accepted.
      if (this.#stops.has(d)) break;
    }
    return oneHot(block);
  }

  observe(v: Verdict): void {
    this.#guesses.update(v);
  }
}
