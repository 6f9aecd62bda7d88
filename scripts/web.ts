/**
 * Builds the browser page into build/web/ (never committed): the page's
 * TypeScript bundled for browsers, the kernels (single-thread and threads
 * builds) and the built-in model beside it. The folder is a static site:
 * `deno task serve` serves it at / with the cross-origin isolation headers
 * that shared memory needs; any static host serves it single-threaded.
 *
 *   deno task web [--out DIR]
 */
import { parseArgs } from "node:util";

const root = new URL("../", import.meta.url);
const path = (p: string) => new URL(p, root).pathname;
const { values } = parseArgs({
  args: Deno.args,
  options: { out: { type: "string", default: path("build/web") } },
});
const out = values.out!.replace(/\/+$/, "");

const bundles: [string, string][] = [
  ["web/app.ts", "app.js"],
  ["web/generate_worker.ts", "generate-worker.js"],
  ["src/worker/kernel_worker.ts", "kernel-worker.js"],
  ["web/images.ts", "images.js"],
  ["web/image_worker.ts", "image-worker.js"],
];
const copies: [string, string][] = [
  ["web/index.html", "index.html"],
  ["web/style.css", "style.css"],
  ["build/seer.wasm", "seer.wasm"],
  ["build/seer-threads.wasm", "seer-threads.wasm"],
  ["models/stories260K.bin", "models/stories260K.bin"],
  ["models/tok512.bin", "models/tok512.bin"],
  // The image cascade, flattened: the server serves one folder level.
  ["models/image/base/config.json", "models/image-base.json"],
  ["models/image/base/model.safetensors", "models/image-base.safetensors"],
  ["models/image/superres/config.json", "models/image-superres.json"],
  [
    "models/image/superres/model.safetensors",
    "models/image-superres.safetensors",
  ],
];

await Deno.mkdir(`${out}/models`, { recursive: true });
const results = await Promise.all(
  bundles.map(([src, dst]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "bundle",
        "--quiet",
        "--config",
        path("deno.json"),
        "--platform",
        "browser",
        "--minify",
        "--output",
        `${out}/${dst}`,
        path(src),
      ],
      stdout: "inherit",
      stderr: "inherit",
    }).output()
  ),
);
results.forEach((r, i) => {
  if (!r.success) {
    console.error(`web: bundling ${bundles[i][0]} failed`);
    Deno.exit(1);
  }
});
for (const [src, dst] of copies) {
  try {
    await Deno.copyFile(path(src), `${out}/${dst}`);
  } catch (e) {
    console.error(
      `web: cannot copy ${src} (${e}); run \`deno task build\` first`,
    );
    Deno.exit(1);
  }
}
console.error(`web: ${out}/ (open index.html through a web server)`);
