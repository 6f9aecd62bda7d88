/** Runs seer's CLI as a user does (a fresh Deno process) and collects its output. */
const CLI = new URL("../../src/cli.ts", import.meta.url).pathname;

export async function runCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}
