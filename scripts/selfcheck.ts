/** Temporary demo until text generation lands: loads the kernels and runs one. */
import { Runtime } from "../src/kernels/runtime.ts";

const rt = await Runtime.load();
console.log(
  `seer kernels loaded: ${
    Object.keys(rt.instance.exports).length
  } exports, heap at ${rt.k.heap_base()}`,
);
