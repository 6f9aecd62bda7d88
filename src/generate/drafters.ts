/**
 * Drafters for speculative decoding, behind the one small Drafter
 * interface: a model that drafts token by token (a separate small model,
 * the target quantized to q8_0, or the target's first layers), prompt
 * lookup over the context, and several at once, picked per step by recent
 * acceptance. The staged NAR drafters (Jacobi, lookahead, fixed blocks) are
 * in nar.ts.
 */
import type { Candidates } from "../sampling/sampler.ts";
import { draw } from "../sampling/sampler.ts";
import {
  AdaptiveK,
  commonPrefix,
  DEFAULT_ROW_COST,
  type Draft,
  type Drafter,
  type Policy,
  PROBE_AFTER,
  type ScoringModel,
  type Verdict,
} from "./speculative.ts";

const NO_DRAFT: Draft = { tokens: [], q: [] };

/**
 * Drafts with a model, one token per forward: greedy drafts the argmax;
 * sampling draws from the drafter's own distribution q (its own sampling
 * parameters, which need not equal the target's) and reports q. The model's
 * KV cache follows the context the same way the target's does: it keeps
 * the tokens it has fed, and refeeds from the first one the context no
 * longer shares.
 */
export class ModelDrafter implements Drafter {
  #fed: number[] = [];
  readonly #stops: ReadonlySet<number>;

  constructor(
    readonly name: string,
    private readonly model: ScoringModel,
    private readonly policy: Policy,
    private readonly coin: () => number,
    readonly cost: number,
    stopTokens: readonly number[] = [],
  ) {
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
    let logits = this.model.forwardBatch(context.slice(c), c);
    this.#fed.length = c;
    for (let i = c; i < n; i++) this.#fed.push(context[i]);
    const tokens: number[] = [];
    const q: (Candidates | null)[] = [];
    for (let i = 0; i < k; i++) {
      let d: number;
      if (this.policy.greedy) {
        d = this.policy.best(logits, context, tokens);
        q.push(null);
      } else {
        const dist = this.policy.distribution(logits, context, tokens);
        d = dist.n === 1 ? dist.ids[0] : draw(dist, this.coin());
        q.push(dist.n === 1 ? null : dist);
      }
      tokens.push(d);
      // The last draft is never fed: the target's verdict decides what follows.
      if (i === k - 1 || this.#stops.has(d)) break;
      logits = this.model.forward(d, n + i);
      this.#fed.push(d);
    }
    return { tokens, q };
  }
}

/**
 * Prompt lookup: find the latest earlier occurrence of the context's last
 * m tokens (m = n down to 1) and propose what followed it. Copying may run
 * into the draft itself, so a repeating pattern drafts as far as k allows.
 * Deterministic, so q is one-hot.
 */
export class NgramDrafter implements Drafter {
  readonly name = "ngram";
  /** Searching is a scan of the context: negligible next to a forward. */
  readonly cost = 0.01;

  constructor(readonly n: number, readonly minN = 1) {}

  propose(context: readonly number[], k: number): Draft {
    const len = context.length;
    for (let m = Math.min(this.n, len - 1); m >= this.minN; m--) {
      for (let end = len - 2; end >= m - 1; end--) {
        let j = 0;
        while (j < m && context[end - j] === context[len - 1 - j]) j++;
        if (j < m) continue;
        const tokens: number[] = [];
        for (let i = end + 1; tokens.length < k; i++) {
          tokens.push(i < len ? context[i] : tokens[i - len]);
        }
        return { tokens, q: tokens.map(() => null) };
      }
    }
    return NO_DRAFT;
  }
}

interface Member {
  drafter: Drafter;
  tuner: AdaptiveK;
  picked: number;
}

/**
 * Several drafters at once: each step asks the one with the best expected
 * tokens per unit cost (its own acceptance estimate and cost, at its own best
 * k) and falls back to the next when it has no proposal (prompt lookup
 * often has none). Estimates of drafters not used drift back to the prior,
 * so a drafter that did badly once is tried again later.
 */
export class MultiDrafter implements Drafter {
  readonly name: string;
  readonly cost = 0;
  readonly adaptsK = true;
  readonly #members: Member[];
  #last: Member | null = null;
  #skipped = 0;

  constructor(
    drafters: Drafter[],
    kMax: number,
    rowCost = DEFAULT_ROW_COST,
  ) {
    this.name = `multi(${drafters.map((d) => d.name).join(",")})`;
    this.#members = drafters.map((drafter) => ({
      drafter,
      tuner: new AdaptiveK(kMax, drafter.cost, rowCost),
      picked: 0,
    }));
  }

  prefill(prompt: readonly number[]): void {
    for (const m of this.#members) m.drafter.prefill?.(prompt);
  }

  propose(context: readonly number[], limit: number): Draft {
    const ranked = this.#members
      .map((m, i) => ({ m, i, v: m.tuner.value(m.tuner.best(limit)) }))
      .sort((a, b) => b.v - a.v || a.i - b.i);
    this.#last = null;
    // As AdaptiveK.decide: a plain step when no member is expected to pay.
    if (ranked[0].v < 1 && ++this.#skipped <= PROBE_AFTER) return NO_DRAFT;
    this.#skipped = 0;
    for (const { m } of ranked) {
      const draft = m.drafter.propose(context, m.tuner.best(limit));
      if (draft.tokens.length > 0) {
        this.#last = m;
        m.picked++;
        return draft;
      }
    }
    return NO_DRAFT;
  }

  observe(v: Verdict): void {
    for (const m of this.#members) {
      if (m === this.#last) m.tuner.update(v.accepted, v.drafted);
      else m.tuner.forget(0.02);
      m.drafter.observe?.(v);
    }
  }

  stats(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const m of this.#members) out[`picked_${m.drafter.name}`] = m.picked;
    return out;
  }

  dispose(): void {
    for (const m of this.#members) m.drafter.dispose?.();
  }
}
