/**
 * Server metrics in the Prometheus text exposition format (version 0.0.4):
 * counters, gauges and histograms with cumulative buckets, as a scraper
 * expects them. Small on purpose: the server needs a handful of series,
 * not a client library.
 */

type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${
      v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")
    }"`
  );
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(x: number): string {
  if (x === Infinity) return "+Inf";
  return Number.isInteger(x)
    ? String(x)
    : x.toPrecision(6).replace(/\.?0+$/, "");
}

interface Series {
  render(): string[];
}

export class Counter implements Series {
  #values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    this.#values.set(key, (this.#values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.#values.get(labelText(labels)) ?? 0;
  }

  render(): string[] {
    const lines = [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} counter`,
    ];
    if (this.#values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, v] of this.#values) {
      lines.push(`${this.name}${key} ${num(v)}`);
    }
    return lines;
  }
}

/** A gauge read at scrape time, so it can never drift from the truth. */
export class Gauge implements Series {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => number,
  ) {}

  render(): string[] {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} gauge`,
      `${this.name} ${num(this.read())}`,
    ];
  }
}

export class Histogram implements Series {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending; +Inf is implied. */
    readonly bounds: readonly number[],
  ) {
    this.counts = new Array(bounds.length).fill(0);
  }

  observe(x: number): void {
    this.sum += x;
    this.count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (x <= this.bounds[i]) this.counts[i]++;
    }
  }

  render(): string[] {
    const lines = [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} histogram`,
    ];
    this.bounds.forEach((b, i) =>
      lines.push(`${this.name}_bucket{le="${num(b)}"} ${this.counts[i]}`)
    );
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${num(this.sum)}`);
    lines.push(`${this.name}_count ${this.count}`);
    return lines;
  }
}

/** The series the server exports. */
export class ServerMetrics {
  readonly requests = new Counter(
    "seer_http_requests_total",
    "HTTP requests answered, by route and status.",
  );
  readonly promptTokens = new Counter(
    "seer_prompt_tokens_total",
    "Prompt tokens processed (BOS included).",
  );
  readonly generatedTokens = new Counter(
    "seer_generated_tokens_total",
    "Tokens generated.",
  );
  readonly draftedTokens = new Counter(
    "seer_drafted_tokens_total",
    "Tokens proposed by speculative drafters.",
  );
  readonly acceptedTokens = new Counter(
    "seer_accepted_tokens_total",
    "Drafted tokens the target model accepted.",
  );
  readonly generations = new Counter(
    "seer_generations_total",
    "Generations finished, by finish reason (length, stop, eos, context, abort, deadline, error).",
  );
  readonly imageRequests = new Counter(
    "seer_image_requests_total",
    "Image generation requests that reached the models, by outcome (ok, invalid, aborted, deadline, error).",
  );
  readonly images = new Counter(
    "seer_images_generated_total",
    "Images generated and returned.",
  );
  readonly timeToFirstToken = new Histogram(
    "seer_time_to_first_token_seconds",
    "From request arrival (queueing included) to the first generated token.",
    [
      0.001,
      0.0025,
      0.005,
      0.01,
      0.025,
      0.05,
      0.1,
      0.25,
      0.5,
      1,
      2.5,
      5,
      10,
      30,
    ],
  );
  readonly tokenLatency = new Histogram(
    "seer_token_latency_seconds",
    "Time between consecutive generated tokens of one request.",
    [
      0.0001,
      0.00025,
      0.0005,
      0.001,
      0.0025,
      0.005,
      0.01,
      0.025,
      0.05,
      0.1,
      0.25,
      0.5,
      1,
    ],
  );
  readonly #series: Series[];

  constructor(
    queueDepth: () => number,
    busySlots: () => number,
    slots: () => number,
  ) {
    this.#series = [
      this.requests,
      this.promptTokens,
      this.generatedTokens,
      this.draftedTokens,
      this.acceptedTokens,
      this.generations,
      this.imageRequests,
      this.images,
      this.timeToFirstToken,
      this.tokenLatency,
      new Gauge("seer_queue_depth", "Requests waiting for a slot.", queueDepth),
      new Gauge("seer_slots_busy", "Slots generating now.", busySlots),
      new Gauge(
        "seer_slots_total",
        "Slots (concurrent generations) configured.",
        slots,
      ),
    ];
  }

  render(): string {
    return this.#series.flatMap((s) => s.render()).join("\n") + "\n";
  }
}
