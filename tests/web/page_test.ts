/**
 * The page in real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core): served by `deno task serve`'s server (cross-origin
 * isolated: a worker pool over shared memory) and by a plain static server
 * without the isolation headers (one thread). Both must print the CLI's
 * greedy text for the same prompt, for the built-in model, a GGUF picked
 * from disk, and with a drafter (speculative greedy output is plain greedy
 * output). A screenshot goes to build/ (to docs/web.png with
 * SEER_SCREENSHOT=docs/web.png).
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";

const ROOT = new URL("../../", import.meta.url).pathname;
const GGUF =
  new URL("../../../shared/models/stories260K-f32.gguf", import.meta.url)
    .pathname;
const PROMPT = "Once upon a time";
const MAX_TOKENS = 120;

async function run(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  assert.equal(out.code, 0, `deno ${args.join(" ")}:\n${text(out.stderr)}`);
  return text(out.stdout);
}

async function cliText(model?: string): Promise<string> {
  const out = await run([
    "run",
    "-A",
    "src/cli.ts",
    "generate",
    "--json",
    "--temperature",
    "0",
    "--prompt",
    PROMPT,
    "--max-tokens",
    String(MAX_TOKENS),
    ...(model ? ["--model", model] : []),
  ]);
  return JSON.parse(out).text;
}

/** Starts the server on a free port; resolves with its base URL. */
async function startServer(): Promise<
  { base: string; stop: () => Promise<void> }
> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "src/server/main.ts", "--port", "0"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`the server did not start:\n${seen}`)),
      30_000,
    );
  });
  try {
    for (;;) {
      const { value, done } = await Promise.race([reader.read(), timeout]);
      if (done) throw new Error(`the server exited:\n${seen}`);
      seen += value;
      const m = /listening on (http:\/\/\S+)/.exec(seen);
      if (m) {
        (async () => {
          while (!(await reader.read()).done);
        })();
        return {
          base: m[1],
          stop: async () => {
            child.kill("SIGTERM");
            await child.status;
          },
        };
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** build/web/ as plain static files: no isolation headers. */
function staticServer(): { base: string; stop: () => Promise<void> } {
  const types: Record<string, string> = {
    html: "text/html",
    js: "text/javascript",
    css: "text/css",
    wasm: "application/wasm",
  };
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (req) => {
      const path = new URL(req.url).pathname.slice(1) || "index.html";
      if (path.includes("..")) return new Response("no", { status: 400 });
      try {
        const body = await Deno.readFile(`${ROOT}build/web/${path}`);
        const type = types[path.split(".").pop()!] ??
          "application/octet-stream";
        return new Response(body, { headers: { "content-type": type } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    stop: () => server.shutdown(),
  };
}

async function launch(): Promise<Browser> {
  return await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

async function waitState(page: Page, state: string) {
  // Evaluated in the page (a string: this file is not type-checked with the DOM).
  await page.waitForFunction(
    `["${state}", "error"].includes(document.getElementById("status").dataset.state)`,
    undefined,
    { timeout: 60_000 },
  );
  const status = page.locator("#status");
  assert.equal(
    await status.getAttribute("data-state"),
    state,
    `the page says: ${await status.textContent()}`,
  );
}

async function generate(page: Page, drafter = "none"): Promise<string> {
  await page.fill("#prompt", PROMPT);
  await page.fill("#max-tokens", String(MAX_TOKENS));
  await page.fill("#temperature", "0");
  await page.selectOption("#drafter", drafter);
  await page.click("#generate");
  await waitState(page, "done");
  const out = (await page.textContent("#output"))!;
  assert.ok(out.startsWith(PROMPT), "the output starts with the prompt");
  return out.slice(PROMPT.length);
}

Deno.test({
  name:
    "web: the page generates the CLI's greedy text, isolated with 2 threads and as static files",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await run(["run", "-A", "scripts/web.ts"]);
    const [expected, expectedGguf] = await Promise.all([
      cliText(),
      cliText(GGUF),
    ]);
    assert.ok(expected.length > 200, "the CLI generated a story");

    const server = await startServer();
    const plain = staticServer();
    const browser = await launch();
    try {
      // From the server: isolated, so 2 threads over shared memory; minWork
      // 0 makes the built-in model's small products split for real.
      const page = await browser.newPage({
        viewport: { width: 1000, height: 1000 },
      });
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${server.base}/?minWork=0`);
      assert.equal(await page.evaluate("self.crossOriginIsolated"), true);
      await page.fill("#threads", "2");
      await page.click("#load");
      await waitState(page, "ready");
      const info = page.locator("#model-info");
      assert.equal(await info.getAttribute("data-shared-memory"), "true");
      assert.equal(await info.getAttribute("data-threads"), "2");
      assert.equal(await generate(page), expected);
      const split = (await page.textContent("#stat-split"))!;
      assert.match(split, /^[1-9]\d* of \d+$/, `products split: ${split}`);

      // A drafter changes how tokens are found, not which: same text, and
      // the acceptance rate and the chart have something to show.
      assert.equal(await generate(page, "layerskip"), expected);
      assert.match((await page.textContent("#stat-accept"))!, /^\d+%$/);

      // Stop, clicked in the same turn as Generate: the worker takes it at
      // its first event-loop turn, after 30 ms of generating (500 tokens
      // take several times that).
      await page.fill("#max-tokens", "500");
      await page.selectOption("#drafter", "none");
      await page.evaluate(
        `document.getElementById("generate").click();
         document.getElementById("stop").click();`,
      );
      await waitState(page, "done");
      assert.equal(await page.textContent("#status"), "done (abort)");
      const stoppedAt = Number(await page.textContent("#stat-tokens"));
      assert.ok(stoppedAt < 500, `stopped after ${stoppedAt} tokens`);

      // A GGUF picked from disk.
      await page.check("[name=source][value=files]");
      await page.setInputFiles("#files", GGUF);
      await page.click("#load");
      await waitState(page, "ready");
      assert.match((await info.textContent())!, /stories260K-f32\.gguf/);
      assert.equal(await generate(page, "ngram"), expectedGguf);
      const shot = Deno.env.get("SEER_SCREENSHOT") ??
        `${ROOT}build/web-page.png`;
      await page.screenshot({ path: shot, fullPage: true });
      assert.deepEqual(errors, []);

      // As static files without the headers: one thread, same text.
      const flat = await browser.newPage();
      await flat.goto(`${plain.base}/`);
      assert.equal(await flat.evaluate("self.crossOriginIsolated"), false);
      assert.equal(await flat.isDisabled("#threads"), true);
      await flat.click("#load");
      await waitState(flat, "ready");
      const flatInfo = flat.locator("#model-info");
      assert.equal(await flatInfo.getAttribute("data-shared-memory"), "false");
      assert.equal(await generate(flat), expected);
    } finally {
      await browser.close();
      await plain.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "web: the image tab shows every denoising step and ends with generateImages' digits",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await run(["run", "-A", "scripts/web.ts"]);
    const options = { digit: 7, count: 2, steps: 5, guidance: 3, seed: 1 };
    // The same cascade sampled in this process: the reference pixels.
    const { Runtime } = await import("../../src/kernels/runtime.ts");
    const { loadCascade } = await import("../../src/image/checkpoint.ts");
    const { generateImages } = await import("../../src/image/generate.ts");
    const { base, superres } = await loadCascade(await Runtime.load());
    const expected = (await generateImages({
      base,
      superres,
      classes: Array(options.count).fill(options.digit),
      sampler: "ddim",
      steps: options.steps,
      guidance: options.guidance,
      seed: options.seed,
    })).images.map((img) =>
      Array.from(img, (v) => Math.round(Math.min(1, Math.max(0, v)) * 255))
    );

    const server = await startServer();
    const browser = await launch();
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(`${server.base}/`);
      for (const [key, value] of Object.entries(options)) {
        await page.fill(
          `#image-${key === "count" ? "count" : key}`,
          String(value),
        );
      }
      await page.click("#image-generate");
      await page.waitForFunction(
        `["done", "error"].includes(document.getElementById("image-status").dataset.state)`,
        undefined,
        { timeout: 60_000 },
      );
      assert.match(
        (await page.textContent("#image-status"))!,
        /^done: 2 images/,
      );
      // Both stages report every step: 5 DDIM steps each.
      assert.equal(
        await page.getAttribute("#image-canvas", "data-steps"),
        "10",
      );
      // The canvas scales each 28×28 image to 112×112 without smoothing:
      // the centre of each 4×4 block is one generated pixel.
      const drawn = await page.evaluate(`(() => {
        const c = document.getElementById("image-canvas");
        const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        const images = [];
        for (let n = 0; n < ${options.count}; n++) {
          const px = [];
          for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
            px.push(data[((y * 4 + 2) * c.width + n * 116 + x * 4 + 2) * 4]);
          }
          images.push(px);
        }
        return images;
      })()`) as number[][];
      for (let n = 0; n < options.count; n++) {
        // Same kernels, same seed; allow one grey level for float rounding
        // in the two JavaScript engines' Math functions.
        const off = drawn[n].filter((v, i) => Math.abs(v - expected[n][i]) > 1);
        assert.equal(off.length, 0, `image ${n}: ${off.length} pixels differ`);
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  },
});
