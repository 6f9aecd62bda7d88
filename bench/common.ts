/**
 * What the benchmark scripts share: where things are, random-weight models
 * made once and reused, run.c built from ../shared/peers, and medians.
 */
export const root = new URL("../", import.meta.url).pathname;
export const shared = new URL("../../shared/", import.meta.url).pathname;
/** Models and binaries made for benchmarks; kept between runs. */
export const cache = `${Deno.env.get("TMPDIR") ?? "/tmp"}/seer-bench`;
/** The 32k-token tokenizer the random models use. */
export const TOKENIZER_32K = `${shared}models/tokenizer.bin`;

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * A random-weight llama2.c checkpoint of a story-model shape (15M, 42M,
 * 110M), made with `scripts/make_model.ts --seed 1` on first use.
 */
export async function randomModel(shape: string): Promise<string> {
  await Deno.mkdir(cache, { recursive: true });
  const path = `${cache}/random-${shape}.bin`;
  try {
    await Deno.stat(path);
    return path;
  } catch {
    // Not made yet.
  }
  console.error(`making random ${shape} model → ${path}`);
  const p = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${root}scripts/make_model.ts`,
      ...["--shape", shape, "--seed", "1", "--out", path],
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!p.success) throw new Error(`make-model ${shape} failed`);
  return path;
}

/**
 * llama2.c's run.c built with gcc -Ofast -march=native (and OpenMP when
 * asked); undefined, with a note, when gcc is missing or fails.
 */
export async function buildRunC(
  { openmp = false } = {},
): Promise<string | undefined> {
  await Deno.mkdir(cache, { recursive: true });
  const out = `${cache}/run-${openmp ? "omp" : "ofast"}`;
  try {
    const p = await new Deno.Command("gcc", {
      args: [
        "-Ofast",
        "-march=native",
        ...(openmp ? ["-fopenmp"] : []),
        "-o",
        out,
        `${shared}peers/llama2c/run.c`,
        "-lm",
      ],
    }).output();
    if (p.success) return out;
    console.error(new TextDecoder().decode(p.stderr));
  } catch {
    // gcc is not installed.
  }
  console.error(
    "note: run.c could not be built (gcc missing?); its column is skipped",
  );
  return undefined;
}
