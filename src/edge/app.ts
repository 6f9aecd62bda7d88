/**
 * seer for edge runtimes (Deno Deploy, Cloudflare-Workers-style isolates):
 * the server's Hono app over a model given as bytes and the kernels as an
 * already compiled module. No file system, no threads (one runtime, the
 * single-thread build), no Deno APIs: `scripts/bundle.ts` turns this into
 * one self-contained `seer.js` with the built-in model inside.
 *
 *   import source kernels from "./seer.wasm";
 *   export default createEdgeApp({ kernels, model, modelName, tokenizer });
 *
 * The model loads on first use of the module (while /health says 503), so
 * the isolate starts at once.
 */
import { createApp, type SeerApp, type ServerOptions } from "../server/app.ts";
import { Engine } from "../engine.ts";
import { Runtime } from "../kernels/runtime.ts";
import { parseModel } from "../formats/load.ts";
import { readTokenizerBin } from "../tokenizer/tokenizer_bin.ts";
import { SeerError } from "../errors.ts";

export interface EdgeOptions extends ServerOptions {
  /** The single-thread kernel module (build/seer.wasm), compiled. */
  kernels: WebAssembly.Module;
  /** A llama2.c checkpoint or GGUF file. */
  model: Uint8Array;
  /** Its file name: the model id /v1/models reports, and in errors. */
  modelName: string;
  /** A llama2.c tokenizer.bin (GGUF files carry their own). */
  tokenizer?: Uint8Array;
}

/** Loads the model from bytes into a fresh single-thread runtime. */
export async function loadEdgeEngine(o: EdgeOptions): Promise<Engine> {
  const model = parseModel(o.model, o.modelName);
  let vocabulary = model.vocabulary;
  if (!vocabulary) {
    if (!o.tokenizer) {
      throw new SeerError(
        "invalid_argument",
        `${o.modelName} is a llama2.c checkpoint without a vocabulary: bundle its tokenizer.bin too`,
      );
    }
    vocabulary = readTokenizerBin(o.tokenizer, "tokenizer.bin");
  }
  const runtime = await Runtime.load({ wasm: o.kernels });
  return await Engine.load({ files: { model, vocabulary }, runtime });
}

/** The OpenAI-compatible app; `fetch` is what an edge runtime calls. */
export function createEdgeApp(o: EdgeOptions): SeerApp {
  const { kernels: _k, model: _m, modelName: _n, tokenizer: _t, ...server } = o;
  const engine = loadEdgeEngine(o);
  // The app reports a failed load on /health and every request; keep the
  // rejection from also surfacing as unhandled.
  engine.catch(() => {});
  return createApp(engine, server);
}
