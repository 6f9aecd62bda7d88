/**
 * Turning logits into the next token. A sampler step is a tiny interface
 * over a candidate list (apply required; accept/reset optional), and a
 * chain of steps is itself a step. The chain ends with a normalised
 * distribution; drawing from it takes a coin from the WASM PRNG, so the
 * same seed gives the same tokens. Speculative sampling reads the same
 * distribution (`distribution`) to compare target and draft.
 */
import { SeerError } from "../errors.ts";

export interface SamplingParams {
  /** 0 = greedy (argmax); otherwise logits are divided by it. */
  temperature: number;
  /** Keep the k most likely tokens; 0 = all. */
  topK: number;
  /** Keep the smallest set whose probability reaches p; 1 = all. */
  topP: number;
  /** Drop tokens less likely than minP × the most likely one; 0 = none. */
  minP: number;
  /** > 1 discourages tokens seen in the last `repetitionLastN`; 1 = off. */
  repetitionPenalty: number;
  repetitionLastN: number;
}

export const DEFAULT_SAMPLING: SamplingParams = {
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
  repetitionLastN: 64,
};

/** Fills defaults and refuses out-of-range values, naming the field. */
export function samplingParams(
  given: Partial<SamplingParams> = {},
): SamplingParams {
  const p = { ...DEFAULT_SAMPLING };
  for (const [key, value] of Object.entries(given)) {
    if (value !== undefined) (p as Record<string, number>)[key] = value;
  }
  const check = (field: keyof SamplingParams, ok: boolean, range: string) => {
    const v = p[field];
    if (typeof v !== "number" || !Number.isFinite(v) || !ok) {
      throw new SeerError(
        "invalid_argument",
        `${field} must be ${range}, got ${v}`,
      );
    }
  };
  check(
    "temperature",
    p.temperature >= 0 && p.temperature <= 100,
    "from 0 to 100",
  );
  check(
    "topK",
    Number.isInteger(p.topK) && p.topK >= 0,
    "a non-negative integer",
  );
  check("topP", p.topP > 0 && p.topP <= 1, "in (0, 1]");
  check("minP", p.minP >= 0 && p.minP < 1, "in [0, 1)");
  check(
    "repetitionPenalty",
    p.repetitionPenalty > 0 && p.repetitionPenalty <= 10,
    "in (0, 10]",
  );
  check(
    "repetitionLastN",
    Number.isInteger(p.repetitionLastN) && p.repetitionLastN >= 0,
    "a non-negative integer",
  );
  return p;
}

/**
 * Candidate tokens: `ids[i]` with `values[i]`, i < n. Values are logits
 * until the softmax step turns them into probabilities summing to 1.
 */
export interface Candidates {
  ids: Int32Array;
  values: Float32Array;
  n: number;
  /** Whether values are probabilities (after softmax). */
  probs: boolean;
  /** Whether sorted by value, highest first. */
  sorted: boolean;
}

export interface SamplerStep {
  readonly name: string;
  apply(c: Candidates): void;
  /** Told every token that joins the context (prompt and generated). */
  accept?(token: number): void;
  reset?(): void;
}

/** All tokens of a logits vector, as candidates (copied). */
export function candidatesFrom(logits: ArrayLike<number>): Candidates {
  const n = logits.length;
  const ids = new Int32Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    ids[i] = i;
    values[i] = logits[i];
  }
  return { ids, values, n, probs: false, sorted: false };
}

function sortDescending(c: Candidates): void {
  if (c.sorted) return;
  const order = Array.from({ length: c.n }, (_, i) => i);
  // Ties keep the lower token id first, so results never depend on engine sort details.
  order.sort((a, b) => c.values[b] - c.values[a] || c.ids[a] - c.ids[b]);
  const ids = order.map((i) => c.ids[i]);
  const values = order.map((i) => c.values[i]);
  c.ids.set(ids);
  c.values.set(values);
  c.sorted = true;
}

/** Keeps the candidates at positions where keep(i) holds, in order. */
function filter(c: Candidates, keep: (i: number) => boolean): void {
  let j = 0;
  for (let i = 0; i < c.n; i++) {
    if (!keep(i)) continue;
    c.ids[j] = c.ids[i];
    c.values[j] = c.values[i];
    j++;
  }
  c.n = j;
}

export function repetitionPenalty(penalty: number, lastN: number): SamplerStep {
  const history: number[] = [];
  return {
    name: "repetition-penalty",
    apply(c) {
      if (penalty === 1 || history.length === 0) return;
      const seen = new Set(history);
      for (let i = 0; i < c.n; i++) {
        if (!seen.has(c.ids[i])) continue;
        // As in CTRL / llama.cpp: shrink positive logits, grow negative ones.
        const v = c.values[i];
        c.values[i] = v > 0 ? v / penalty : v * penalty;
      }
      c.sorted = false;
    },
    accept(token) {
      history.push(token);
      if (history.length > lastN) history.shift();
    },
    reset() {
      history.length = 0;
    },
  };
}

export function topK(k: number): SamplerStep {
  return {
    name: "top-k",
    apply(c) {
      if (k <= 0 || k >= c.n) return;
      if (!c.sorted) {
        // Partial selection: the k-th largest value by sorting a copy only
        // of those values, then a stable filter (ties keep lower ids).
        const sorted = c.values.slice(0, c.n).sort().reverse();
        const kth = sorted[k - 1];
        let above = 0;
        for (let i = 0; i < c.n; i++) if (c.values[i] > kth) above++;
        let ties = k - above;
        filter(
          c,
          (i) => c.values[i] > kth || (c.values[i] === kth && ties-- > 0),
        );
        sortDescending(c);
        return;
      }
      c.n = k;
    },
  };
}

export function temperature(t: number): SamplerStep {
  return {
    name: "temperature",
    apply(c) {
      if (t === 1) return;
      for (let i = 0; i < c.n; i++) c.values[i] /= t;
    },
  };
}

/** Numerically stable softmax over the candidates' logits. */
export function softmax(): SamplerStep {
  return {
    name: "softmax",
    apply(c) {
      let max = -Infinity;
      for (let i = 0; i < c.n; i++) max = Math.max(max, c.values[i]);
      let sum = 0;
      for (let i = 0; i < c.n; i++) {
        const e = Math.exp(c.values[i] - max);
        c.values[i] = e;
        sum += e;
      }
      for (let i = 0; i < c.n; i++) c.values[i] /= sum;
      c.probs = true;
    },
  };
}

export function minP(p: number): SamplerStep {
  return {
    name: "min-p",
    apply(c) {
      if (p <= 0) return;
      let max = 0;
      for (let i = 0; i < c.n; i++) max = Math.max(max, c.values[i]);
      const cut = p * max;
      filter(c, (i) => c.values[i] >= cut);
      normalize(c);
    },
  };
}

export function topP(p: number): SamplerStep {
  return {
    name: "top-p",
    apply(c) {
      if (p >= 1) return;
      // Tokens below (1 - p) / (n - 1) can never be in the nucleus; dropping
      // them first keeps the sort small on large vocabularies.
      if (c.n > 1) {
        const cut = (1 - p) / (c.n - 1);
        filter(c, (i) => c.values[i] >= cut);
      }
      sortDescending(c);
      let sum = 0;
      let keep = c.n;
      for (let i = 0; i < c.n; i++) {
        sum += c.values[i];
        if (sum >= p) {
          keep = i + 1;
          break;
        }
      }
      c.n = keep;
      normalize(c);
    },
  };
}

function normalize(c: Candidates): void {
  let sum = 0;
  for (let i = 0; i < c.n; i++) sum += c.values[i];
  for (let i = 0; i < c.n; i++) c.values[i] /= sum;
}

/** A chain of steps is itself a step. */
export function chain(name: string, steps: SamplerStep[]): SamplerStep {
  return {
    name,
    apply(c) {
      for (const s of steps) s.apply(c);
    },
    accept(token) {
      for (const s of steps) s.accept?.(token);
    },
    reset() {
      for (const s of steps) s.reset?.();
    },
  };
}

/**
 * The sampler for a set of parameters: greedy (argmax after the repetition
 * penalty) when temperature is 0, else penalty → top-k → temperature →
 * softmax → min-p → top-p, and a draw.
 */
export class Sampler {
  readonly params: SamplingParams;
  readonly #penalty: SamplerStep;
  readonly #chain: SamplerStep;

  constructor(params: Partial<SamplingParams> = {}) {
    this.params = samplingParams(params);
    const p = this.params;
    this.#penalty = repetitionPenalty(p.repetitionPenalty, p.repetitionLastN);
    this.#chain = chain("sample", [
      this.#penalty,
      topK(p.topK),
      temperature(p.temperature),
      softmax(),
      minP(p.minP),
      topP(p.topP),
    ]);
  }

  get greedy(): boolean {
    return this.params.temperature === 0;
  }

  /** Records a token that joined the context (for the repetition penalty). */
  accept(token: number): void {
    this.#chain.accept?.(token);
  }

  reset(): void {
    this.#chain.reset?.();
  }

  /**
   * The distribution the next token is drawn from: candidates with
   * probabilities summing to 1. Greedy puts all mass on the argmax.
   */
  distribution(logits: ArrayLike<number>): Candidates {
    const c = candidatesFrom(logits);
    if (this.greedy) {
      this.#penalty.apply(c);
      const best = argmax(c.values, c.n);
      return {
        ids: Int32Array.of(c.ids[best]),
        values: Float32Array.of(1),
        n: 1,
        probs: true,
        sorted: true,
      };
    }
    this.#chain.apply(c);
    return c;
  }

  /** The next token; `coin` is a uniform [0, 1) draw from the run's Rng. */
  sample(logits: ArrayLike<number>, coin: () => number): number {
    if (this.greedy && this.params.repetitionPenalty === 1) {
      return argmax(logits, logits.length);
    }
    const c = this.distribution(logits);
    return c.n === 1 ? c.ids[0] : draw(c, coin());
  }
}

/** Index of the largest value; the first one on ties. */
export function argmax(values: ArrayLike<number>, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Inverse-CDF draw; rounding that leaves u beyond the sum picks the last. */
export function draw(c: Candidates, u: number): number {
  let cdf = 0;
  for (let i = 0; i < c.n; i++) {
    cdf += c.values[i];
    if (u < cdf) return c.ids[i];
  }
  return c.ids[c.n - 1];
}
