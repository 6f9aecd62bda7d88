/**
 * Compiles the AssemblyScript kernels in `assembly/` into `build/*.wasm`
 * with the flags kept in `asconfig.json`. Skips a target whose output is
 * newer than every kernel source, so tasks can call it before every run.
 *
 *   deno run -A scripts/build.ts [--force] [target…]
 */
import asc from "assemblyscript/asc";

const root = new URL("../", import.meta.url);
Deno.chdir(root);
const config = JSON.parse(
  await Deno.readTextFile(new URL("asconfig.json", root)),
);
const force = Deno.args.includes("--force");
const asked = Deno.args.filter((a) => !a.startsWith("--"));
const targets = asked.length ? asked : Object.keys(config.targets);

async function newestSource(): Promise<number> {
  let newest = (await Deno.stat(new URL("asconfig.json", root))).mtime!
    .getTime();
  for await (const entry of Deno.readDir(new URL("assembly/", root))) {
    if (!entry.isFile) continue;
    const stat = await Deno.stat(new URL(`assembly/${entry.name}`, root));
    newest = Math.max(newest, stat.mtime!.getTime());
  }
  return newest;
}

async function mtime(path: URL): Promise<number> {
  try {
    return (await Deno.stat(path)).mtime!.getTime();
  } catch {
    return -1;
  }
}

const sources = await newestSource();
for (const target of targets) {
  if (!config.targets[target]) {
    console.error(
      `build: unknown target "${target}"; asconfig.json has: ${
        Object.keys(config.targets).join(", ")
      }`,
    );
    Deno.exit(2);
  }
  const out = new URL(config.targets[target].outFile, root);
  if (!force && await mtime(out) > sources) continue;
  const { error, stderr } = await asc.main([
    ...config.entries,
    "--config",
    "asconfig.json",
    "--target",
    target,
  ], {});
  if (error) {
    console.error(stderr.toString());
    console.error(`build: target "${target}" failed: ${error.message}`);
    Deno.exit(1);
  }
  console.error(`build: ${config.targets[target].outFile}`);
}
