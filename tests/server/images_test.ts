/**
 * POST /v1/images/generations on the real server over loopback: the
 * `openai` client's images.generate and raw fetch get PNGs whose pixels are
 * exactly what generateImages gives in-process for the same options (on a
 * runtime of its own), bad fields are 400s naming the field, a client that
 * leaves stops the work, and text generation still answers afterwards.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import { decode } from "fast-png";
import { Engine } from "../../src/engine.ts";
import { loadCascade } from "../../src/image/checkpoint.ts";
import { generateImages } from "../../src/image/generate.ts";
import { Runtime } from "../../src/kernels/runtime.ts";
import { loadImageBackend } from "../../src/server/image_models.ts";
import { digitOfPrompt } from "../../src/server/images.ts";
import { assertError, greedy, post, sample, scrape, serve } from "./harness.ts";

const engine = await Engine.load();
const reference = await loadCascade(await Runtime.load());
const images = () => loadImageBackend();

/** The in-process images for these options, as the 8-bit grey a PNG holds. */
async function expected(
  o: {
    digit: number;
    n: number;
    steps: number;
    guidance: number;
    seed: number;
  },
) {
  const { images } = await generateImages({
    ...reference,
    classes: new Array(o.n).fill(o.digit),
    sampler: "ddim",
    steps: o.steps,
    guidance: o.guidance,
    seed: o.seed,
  });
  return images.map((img) =>
    Array.from(img, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255))
  );
}

function pixels(b64: string): number[] {
  const png = decode(Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)));
  assert.equal(png.width, 28);
  assert.equal(png.height, 28);
  assert.equal(png.channels, 1, "greyscale");
  assert.equal(png.depth, 8);
  return Array.from(png.data);
}

Deno.test("images.generate returns n 28×28 PNGs equal to generateImages in-process", async () => {
  const s = await serve(engine, { images });
  try {
    const openai = new OpenAI({
      baseURL: `${s.url}/v1`,
      apiKey: "unused",
      maxRetries: 0,
    });
    // seer's own fields travel as extra body fields of the official client.
    const res = await openai.images.generate({
      prompt: "a handwritten seven",
      n: 3,
      size: "28x28",
      response_format: "b64_json",
      steps: 4,
      guidance: 3,
      seed: 11,
    } as unknown as OpenAI.ImageGenerateParamsNonStreaming);
    assert.equal(res.data?.length, 3);
    const want = await expected({
      digit: 7,
      n: 3,
      steps: 4,
      guidance: 3,
      seed: 11,
    });
    res.data!.forEach((d, i) => assert.deepEqual(pixels(d.b64_json!), want[i]));
    // Three images of one batch come from different noise.
    assert.notDeepEqual(want[0], want[1]);

    // Raw fetch with `class` and no prompt; the seed echoed back reproduces it.
    const raw = await post(`${s.url}/v1/images/generations`, {
      class: 2,
      steps: 3,
      guidance: 1.5,
    });
    assert.equal(raw.status, 200);
    const body = await raw.json();
    assert.equal(typeof body.created, "number");
    assert.equal(body.size, "28x28");
    assert.equal(body.data.length, 1);
    const again = await expected({
      digit: 2,
      n: 1,
      steps: 3,
      guidance: 1.5,
      seed: body.seed,
    });
    assert.deepEqual(pixels(body.data[0].b64_json), again[0]);

    const m = await scrape(s.url);
    assert.equal(sample(m, "seer_images_generated_total"), 4);
    assert.equal(
      sample(m, "seer_image_requests_total", 'outcome="ok"'),
      2,
    );
    assert.equal(
      sample(
        m,
        "seer_http_requests_total",
        'route="/v1/images/generations",status="200"',
      ),
      2,
    );

    // Text generation is untouched by the image models.
    const text = await post(`${s.url}/v1/completions`, {
      prompt: "Once upon a time",
      max_tokens: 12,
      temperature: 0,
    });
    assert.equal(text.status, 200);
    const ref = greedy(engine, "Once upon a time", 12);
    assert.equal((await text.json()).choices[0].text, ref.text);
  } finally {
    await s.close();
  }
});

Deno.test("bad image requests are 400s naming the field", async () => {
  const s = await serve(engine, { images });
  try {
    const cases: [Record<string, unknown>, string][] = [
      [{ prompt: "a cat" }, "prompt"],
      [{ prompt: "7 or 8" }, "prompt"],
      [{ prompt: 7 }, "prompt"],
      [{ prompt: "x".repeat(1001) + " 7" }, "prompt"],
      [{ prompt: "seven", class: 3 }, "prompt"],
      [{}, "class"],
      [{ class: 10 }, "class"],
      [{ class: 1.5 }, "class"],
      [{ class: "7" }, "class"],
      [{ class: 7, response_format: "url" }, "response_format"],
      [{ class: 7, size: "256x256" }, "size"],
      [{ class: 7, n: 0 }, "n"],
      [{ class: 7, n: 17 }, "n"],
      [{ class: 7, sampler: "euler" }, "sampler"],
      [{ class: 7, steps: 0 }, "steps"],
      [{ class: 7, steps: 1001 }, "steps"],
      [{ class: 7, sampler: "ddpm", steps: 10 }, "steps"],
      [{ class: 7, guidance: -1 }, "guidance"],
      [{ class: 7, guidance: 51 }, "guidance"],
      [{ class: 7, seed: -1 }, "seed"],
      [{ class: 7, output_format: "jpeg" }, "output_format"],
      [{ class: 7, stream: true }, "stream"],
    ];
    for (const [body, param] of cases) {
      const res = await post(`${s.url}/v1/images/generations`, body);
      const err = await assertError(res, 400, param);
      assert.match(err.message, new RegExp(param), JSON.stringify(body));
    }
    await assertError(
      await post(`${s.url}/v1/images/generations`, "{not json"),
      400,
    );
    await assertError(
      await fetch(`${s.url}/v1/images/generations`),
      405,
    );
    const m = await scrape(s.url);
    assert.equal(sample(m, "seer_images_generated_total"), 0);
  } finally {
    await s.close();
  }
});

Deno.test("a client that leaves stops its images; a server without image models says 404", async () => {
  const s = await serve(engine, { images });
  try {
    const leaving = new AbortController();
    // 1000 DDIM steps per stage for 8 images: tens of seconds if not stopped.
    const req = post(`${s.url}/v1/images/generations`, {
      class: 4,
      n: 8,
      steps: 1000,
    }, { signal: leaving.signal }).catch((e) => e);
    await new Promise((r) => setTimeout(r, 500));
    leaving.abort();
    assert.ok((await req) instanceof Error);
    const t0 = performance.now();
    await s.seer.idle();
    assert.ok(
      performance.now() - t0 < 2000,
      "generation stopped within a few steps",
    );
    const m = await scrape(s.url);
    assert.equal(
      sample(m, "seer_image_requests_total", 'outcome="aborted"'),
      1,
    );
  } finally {
    await s.close();
  }
  const bare = await serve(engine);
  try {
    await assertError(
      await post(`${bare.url}/v1/images/generations`, { class: 1 }),
      404,
      "model",
    );
  } finally {
    await bare.close();
  }
});

Deno.test("digitOfPrompt reads numerals and English digit words", () => {
  assert.equal(digitOfPrompt("7"), 7);
  assert.equal(digitOfPrompt("Seven"), 7);
  assert.equal(digitOfPrompt("a handwritten zero, please"), 0);
  assert.equal(digitOfPrompt("nine 9"), 9);
  assert.equal(digitOfPrompt("a cat"), undefined);
  assert.equal(digitOfPrompt("17"), undefined);
  assert.throws(() => digitOfPrompt("one and two"), /several digits/);
});
