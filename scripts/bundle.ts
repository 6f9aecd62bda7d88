/**
 * The edge bundle: `deno task bundle --out DIR` writes
 *
 *   DIR/seer.js    one ES module: the Hono app (src/edge/app.ts) with its
 *                  dependencies and the built-in model's bytes inside,
 *                  `export default { fetch }`
 *   DIR/seer.wasm  the single-thread kernels, imported by seer.js as a
 *                  compiled module (`import source`)
 *
 * which run as they are: `deno serve DIR/seer.js`, or on Deno Deploy.
 * Nothing else is read at run time (no file system, no network).
 *
 *   deno task bundle --out DIR [--model FILE --tokenizer FILE]
 */
import { parseArgs } from "node:util";
import { encodeBase64 } from "../src/edge/base64.ts";

const root = new URL("../", import.meta.url);
const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string" },
    model: { type: "string" },
    tokenizer: { type: "string" },
  },
});
if (!values.out) {
  console.error(
    "usage: deno task bundle --out DIR [--model FILE --tokenizer FILE]",
  );
  Deno.exit(2);
}
const out = values.out.replace(/\/+$/, "");
const model = values.model ?? new URL("models/stories260K.bin", root).pathname;
const tokenizer = values.tokenizer ??
  (values.model ? undefined : new URL("models/tok512.bin", root).pathname);
const modelName = model.split("/").pop()!;

async function read(path: string, what: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    console.error(`bundle: cannot read the ${what} ${path}: ${e}`);
    Deno.exit(1);
  }
}

const modelBytes = await read(model, "model");
const tokenizerBytes = tokenizer ? await read(tokenizer, "tokenizer") : null;
const kernels = await read(
  new URL("build/seer.wasm", root).pathname,
  "kernel module (run `deno task build`)",
);

// The entry lives in build/ (never committed) so the bundler resolves the
// project's imports; the model goes in as base64, which every runtime can
// decode without a file system.
const entry = new URL("build/edge-entry.ts", root);
await Deno.mkdir(new URL("build/", root), { recursive: true });
await Deno.writeTextFile(
  entry,
  `import { createEdgeApp } from "../src/edge/app.ts";
import { decodeBase64 } from "../src/edge/base64.ts";
// Bound by the import the bundle script puts in front of the bundle.
declare const __seer_kernels: WebAssembly.Module;
const app = createEdgeApp({
  kernels: __seer_kernels,
  modelName: ${JSON.stringify(modelName)},
  model: decodeBase64(${JSON.stringify(encodeBase64(modelBytes))}),
  tokenizer: ${
    tokenizerBytes
      ? `decodeBase64(${JSON.stringify(encodeBase64(tokenizerBytes))})`
      : "undefined"
  },
});
export default { fetch: app.fetch };
`,
);

const body = new URL("build/edge-bundle.js", root).pathname;
const bundled = await new Deno.Command(Deno.execPath(), {
  args: [
    "bundle",
    "--quiet",
    "--config",
    new URL("deno.json", root).pathname,
    "--platform",
    "browser",
    "--output",
    body,
    entry.pathname,
  ],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!bundled.success) {
  console.error("bundle: deno bundle failed");
  Deno.exit(1);
}

// esbuild cannot parse a source-phase import, so it goes in front here;
// the bundle refers to the name as a free variable.
await Deno.mkdir(out, { recursive: true });
await Deno.writeTextFile(
  `${out}/seer.js`,
  `import source __seer_kernels from "./seer.wasm";\n` +
    await Deno.readTextFile(body),
);
await Deno.writeFile(`${out}/seer.wasm`, kernels);
await Deno.remove(entry);
await Deno.remove(body);
const size = (await Deno.stat(`${out}/seer.js`)).size;
console.error(
  `bundle: ${out}/seer.js (${
    (size / 2 ** 20).toFixed(1)
  } MiB, model ${modelName}) + seer.wasm; run: deno serve ${out}/seer.js`,
);
