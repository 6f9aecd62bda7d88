/// <reference lib="dom" />
/**
 * The page: wires the controls to the generation worker (comlink) and
 * draws what it reports. Everything heavy happens in the worker; this
 * thread only reads files the user picks, streams text into the page and
 * keeps the numbers and the chart current.
 *
 * `?minWork=N` in the address passes the pool's threshold through (0 makes
 * even the built-in model's small products split between threads).
 */
import * as Comlink from "comlink";
import type {
  GenerateUpdate,
  GenerateWorker,
  LoadProgress,
  LoadRequest,
} from "./generate_worker.ts";

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;
const num = (id: string) => Number($<HTMLInputElement>(id).value);

const worker = Comlink.wrap<GenerateWorker>(
  new Worker(new URL("./generate-worker.js", location.href), {
    type: "module",
  }),
);

const isolated = self.crossOriginIsolated === true;
const cores = navigator.hardwareConcurrency || 1;
$("env").textContent = isolated
  ? `cross-origin isolated: shared memory available, ${cores} cores`
  : "not cross-origin isolated: one thread (serve with COOP/COEP headers for more)";
const threadsInput = $<HTMLInputElement>("threads");
threadsInput.value = String(isolated ? Math.min(2, cores) : 1);
threadsInput.disabled = !isolated;

const files = $<HTMLInputElement>("files");
for (
  const radio of document.querySelectorAll<HTMLInputElement>("[name=source]")
) {
  radio.addEventListener("change", () => {
    files.disabled = radio.value !== "files" || !radio.checked;
  });
}

function setStatus(text: string, state: string) {
  const s = $("status");
  s.textContent = text;
  s.dataset.state = state;
}

function fail(e: unknown) {
  setStatus(e instanceof Error ? e.message : String(e), "error");
}

const progress = $<HTMLProgressElement>("progress");
function onProgress(e: LoadProgress) {
  // Downloading takes the bar to 80%, parsing and uploading the rest.
  if (e.status === "download") {
    progress.value = e.total ? 0.8 * Math.min(1, e.loaded / e.total) : 0.4;
  } else if (e.status === "read") progress.value = 0.85;
  else if (e.status === "upload") progress.value = 0.95;
  else if (e.status === "ready") progress.value = 1;
}

/** The files the user picked: a GGUF, or a .bin and a tokenizer. */
async function chosenFiles(): Promise<Partial<LoadRequest>> {
  const list = [...(files.files ?? [])];
  const gguf = list.find((f) => /\.gguf$/i.test(f.name));
  const tokenizer = list.find((f) => /tok/i.test(f.name) && f !== gguf);
  const model = gguf ?? list.find((f) => f !== tokenizer);
  if (!model) {
    throw new Error("choose a .gguf, or a .bin and its tokenizer.bin");
  }
  return {
    model: await model.arrayBuffer(),
    modelName: model.name,
    tokenizer: tokenizer ? await tokenizer.arrayBuffer() : undefined,
  };
}

$("load").addEventListener("click", async () => {
  $<HTMLButtonElement>("generate").disabled = true;
  progress.value = 0;
  setStatus("loading…", "loading");
  try {
    const source = document.querySelector<HTMLInputElement>(
      "[name=source]:checked",
    )!.value;
    const picked = source === "files" ? await chosenFiles() : {};
    const minWork = new URLSearchParams(location.search).get("minWork");
    const req: LoadRequest = {
      ...picked,
      threads: num("threads"),
      minWork: minWork === null ? undefined : Number(minWork),
    };
    const transfer = [req.model, req.tokenizer].filter((b) =>
      b
    ) as ArrayBuffer[];
    const info = await worker.load(
      Comlink.transfer(req, transfer),
      Comlink.proxy(onProgress),
    );
    const info_ = $("model-info");
    info_.textContent =
      `${info.name}: dim ${info.dim}, ${info.layers} layers, ` +
      `vocabulary ${info.vocab}, context ${info.context}; ` +
      `${info.threads} thread${info.threads > 1 ? "s" : ""}, ` +
      `shared memory ${info.sharedMemory ? "yes" : "no"}`;
    info_.dataset.sharedMemory = String(info.sharedMemory);
    info_.dataset.threads = String(info.threads);
    $<HTMLButtonElement>("generate").disabled = false;
    setStatus("ready", "ready");
  } catch (e) {
    fail(e);
  }
});

const chart = $<HTMLCanvasElement>("chart");
let chartSteps: number[] = [];
function drawChart() {
  const g = chart.getContext("2d")!;
  g.clearRect(0, 0, chart.width, chart.height);
  if (!chartSteps.length) return;
  const shown = chartSteps.slice(-150);
  const max = Math.max(...shown, 2);
  const w = chart.width / 150;
  g.fillStyle = "#4a72c8";
  shown.forEach((n, i) => {
    const h = (n / max) * (chart.height - 4);
    g.fillRect(i * w, chart.height - h, Math.max(1, w - 1), h);
  });
}

$("generate").addEventListener("click", async () => {
  const output = $("output");
  output.textContent = $<HTMLTextAreaElement>("prompt").value;
  chartSteps = [];
  drawChart();
  $<HTMLButtonElement>("generate").disabled = true;
  $<HTMLButtonElement>("stop").disabled = false;
  setStatus("generating…", "running");
  const onUpdate = (u: GenerateUpdate) => {
    output.textContent += u.text;
    $("stat-tokens").textContent = String(u.tokens);
    $("stat-speed").textContent = u.tokensPerSecond
      ? u.tokensPerSecond.toFixed(0)
      : "–";
    $("stat-accept").textContent = u.acceptanceRate === null
      ? "–"
      : `${(100 * u.acceptanceRate).toFixed(0)}%`;
    $("stat-split").textContent = `${u.split} of ${u.split + u.alone}`;
    chartSteps.push(...u.steps);
    drawChart();
    if (u.done) setStatus(`done (${u.finishReason})`, "done");
  };
  try {
    await worker.generate({
      prompt: $<HTMLTextAreaElement>("prompt").value,
      maxTokens: num("max-tokens"),
      temperature: num("temperature"),
      topP: num("top-p"),
      topK: num("top-k"),
      seed: num("seed"),
      drafter: $<HTMLSelectElement>("drafter").value,
      draftK: num("draft-k"),
    }, Comlink.proxy(onUpdate));
  } catch (e) {
    fail(e);
  } finally {
    $<HTMLButtonElement>("generate").disabled = false;
    $<HTMLButtonElement>("stop").disabled = true;
  }
});

$("stop").addEventListener("click", () => worker.stop());
