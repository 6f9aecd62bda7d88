/**
 * POST /v1/images/generations in OpenAI's images shape, over the digit
 * cascade: `{ prompt, n, size, response_format: "b64_json" }` plus seer's
 * fields `class`, `sampler`, `steps`, `guidance`, `seed`. The answer is
 * `{ created, data: [{ b64_json }], seed, size, output_format }` with one
 * 28×28 greyscale PNG per image. Web-standard: the models come from an
 * ImageBackend the caller supplies (image_models.ts on Deno), so this file
 * never reads a file itself and an edge bundle without images stays small.
 */
import { ApiError, invalid } from "./errors.ts";
import { describe, field, type Json, number } from "./params.ts";

/** One generation, validated. */
export interface ImageParams {
  /** The digit of every image (n copies of the requested class). */
  classes: number[];
  sampler: "ddim" | "ddpm";
  /** DDIM steps per stage (DDPM runs all of the schedule's steps). */
  steps: number;
  guidance: number;
  seed: number;
}

/** What the route needs of the image models. */
export interface ImageBackend {
  /** Side of the images made (28 for the shipped cascade). */
  size: number;
  /** Classes the models know (10: the digits). */
  classes: number;
  /** The schedule's step count T: DDPM runs all of them, DDIM at most T. */
  diffusionSteps: number;
  /** PNG bytes of every image; awaits onStep between denoising steps. */
  generate(
    p: ImageParams,
    o: { signal: AbortSignal; onStep: () => Promise<void> },
  ): Promise<Uint8Array[]>;
  dispose(): void;
}

/** Most images one request may ask for. */
export const MAX_IMAGES_PER_REQUEST = 16;
/** Longest prompt read (OpenAI's own limit for its smallest image model). */
export const MAX_PROMPT_CHARS = 1000;
/** The CLI's defaults, so the same request and seed give the CLI's images. */
export const IMAGE_DEFAULTS = { sampler: "ddim", steps: 20, guidance: 3 };
/** Largest guidance scale (generate.ts refuses beyond it too). */
export const MAX_IMAGE_GUIDANCE = 50;

const DIGIT_WORDS = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
];

/**
 * The digit a prompt names, by numeral or English word ("7", "a seven",
 * "handwritten 7"); undefined when it names none; an error when it names
 * two different ones, since the models draw one digit per image.
 */
export function digitOfPrompt(prompt: string): number | undefined {
  const named = new Set<number>();
  for (const word of prompt.toLowerCase().match(/[a-z]+|[0-9]+/g) ?? []) {
    const d = /^[0-9]$/.test(word) ? Number(word) : DIGIT_WORDS.indexOf(word);
    if (d >= 0) named.add(d);
  }
  if (named.size > 1) {
    throw invalid(
      "prompt",
      `"prompt" names several digits (${
        [...named].join(", ")
      }); name one digit, e.g. "7" or "seven", or send "class"`,
    );
  }
  return named.size ? [...named][0] : undefined;
}

function oneOf(body: Json, name: string, allowed: string[], fix: string) {
  const v = field(body, name);
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !allowed.includes(v)) {
    throw invalid(
      name,
      `"${name}" must be ${
        allowed.map((a) => JSON.stringify(a)).join(" or ")
      }, got ${describe(v)}${fix}`,
    );
  }
  return v;
}

export function parseImageRequest(
  body: Json,
  backend: Pick<ImageBackend, "size" | "classes" | "diffusionSteps">,
): ImageParams {
  const side = `${backend.size}x${backend.size}`;
  oneOf(
    body,
    "response_format",
    ["b64_json"],
    "; this server keeps no images to link to, so it returns them inline",
  );
  oneOf(
    body,
    "size",
    [side],
    `; the models draw ${backend.size}×${backend.size} digits only`,
  );
  oneOf(body, "output_format", ["png"], "; images are greyscale PNGs");
  if (field(body, "stream") === true) {
    throw invalid(
      "stream",
      `"stream" is not supported for images; omit it (watch the steps in the web page's image tab)`,
    );
  }
  const n = number(body, "n", {
    min: 1,
    max: MAX_IMAGES_PER_REQUEST,
    integer: true,
  }) ?? 1;

  const prompt = field(body, "prompt");
  if (prompt !== undefined && typeof prompt !== "string") {
    throw invalid(
      "prompt",
      `"prompt" must be a string, got ${describe(prompt)}`,
    );
  }
  if (prompt !== undefined && prompt.length > MAX_PROMPT_CHARS) {
    throw invalid(
      "prompt",
      `"prompt" is ${prompt.length} characters; at most ${MAX_PROMPT_CHARS}`,
    );
  }
  const cls = number(body, "class", {
    min: 0,
    max: backend.classes - 1,
    integer: true,
  });
  const named = prompt === undefined ? undefined : digitOfPrompt(prompt);
  if (cls !== undefined && named !== undefined && cls !== named) {
    throw invalid(
      "prompt",
      `"prompt" names the digit ${named} but "class" is ${cls}; make them agree or drop one`,
    );
  }
  const digit = cls ?? named;
  if (digit === undefined) {
    throw invalid(
      prompt === undefined ? "class" : "prompt",
      `${
        prompt === undefined ? "send" : `"prompt" names no digit; send`
      } a "prompt" that names one digit ("7", "seven") or "class": 0..${
        backend.classes - 1
      }; the models draw handwritten digits only`,
    );
  }

  const sampler = (oneOf(body, "sampler", ["ddim", "ddpm"], "") ??
    IMAGE_DEFAULTS.sampler) as "ddim" | "ddpm";
  const T = backend.diffusionSteps;
  const stepsGiven = number(body, "steps", { min: 1, max: T, integer: true });
  if (sampler === "ddpm" && stepsGiven !== undefined && stepsGiven !== T) {
    throw invalid(
      "steps",
      `"steps" is ${stepsGiven}, but DDPM always runs all ${T} steps; omit "steps" or use "sampler": "ddim"`,
    );
  }
  const steps = stepsGiven ?? (sampler === "ddpm" ? T : IMAGE_DEFAULTS.steps);
  const guidance = number(body, "guidance", {
    min: 0,
    max: MAX_IMAGE_GUIDANCE,
  }) ?? IMAGE_DEFAULTS.guidance;
  const seed = number(body, "seed", {
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    integer: true,
  }) ?? Math.floor(Math.random() * 2 ** 32);
  return {
    classes: new Array(n).fill(digit),
    sampler,
    steps,
    guidance,
    seed,
  };
}

/** PNG bytes → base64, in chunks (String.fromCharCode of a whole PNG can overflow the stack). */
export function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** The models, loaded on first use; a failed load is retried by the next request. */
export class LazyImages {
  #loading?: Promise<ImageBackend>;
  #loaded?: ImageBackend;
  #disposed = false;

  constructor(
    readonly load: () => Promise<ImageBackend>,
    readonly log: (message: string, error?: unknown) => void,
  ) {}

  async get(): Promise<ImageBackend> {
    if (this.#loaded) return this.#loaded;
    this.#loading ??= this.load();
    try {
      const backend = await this.#loading;
      if (this.#disposed) {
        // The server was disposed while the models loaded: nobody frees them later.
        backend.dispose();
        throw new ApiError(503, "shutting_down", "the server is shutting down");
      }
      return this.#loaded = backend;
    } catch (e) {
      if (e instanceof ApiError) throw e;
      this.#loading = undefined;
      this.log("the image models failed to load", e);
      throw new ApiError(
        503,
        "model_unavailable",
        "the image models failed to load; see the server log",
      );
    }
  }

  dispose(): void {
    this.#disposed = true;
    this.#loaded?.dispose();
    this.#loaded = undefined;
    this.#loading = undefined;
  }
}
