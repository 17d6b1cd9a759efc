// `edgetune watch <source>`: classify a live camera or video stream. Frames come from devices/sources
// at the model's input size; runtime/stream/pipeline.ts drops stale frames for live sources, smooths the
// label and keeps stats; `--json` prints one line per processed frame, `--serve` starts the kiosk
// HTTP service (runtime/stream/serve.ts). Source dropouts are reconnected with backoff and reported; Ctrl-C
// or SIGTERM stops cleanly (the ffmpeg/GStreamer child is closed) and prints the final stats.

import { availableParallelism } from 'node:os';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createSource, DEFAULT_STALL_TIMEOUT_MS, SOURCES_USAGE } from '../../../devices/sources/index.js';
import type { SourceOptions } from '../../../devices/sources/types.js';
import { loadClassifier } from '../../classify/classifier.js';
import { multilabelText } from '../../classify/postprocess.js';
import { interruptSignal } from '../../io/progress.js';
import { durationOption, intOption, invalidOption, listOption, numberOption, parse, retriesOption, writeJson, type Command } from '../args.js';
import { EdgetuneError } from '../../core/errors.js';
import { parseListen, startServer, type KioskServer } from '../../stream/serve.js';
import { modelName } from '../../serve/oip.js';
import { checkModelName } from '../../serve/routes.js';
import { checkTeachable, createTeach, lastTaught, SERVING_FILE, type Teach } from '../../stream/teach.js';
import { formatStats, geometryOfClassifier, resultJson, StreamPipeline, type StreamResult } from '../../stream/pipeline.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';

const usage = `Usage: edgetune watch <source> [options]

Classify frames from a camera or video stream, live.

Options:
  --model <id|file|URL>  registry id, .onnx path, or a served model http://HOST:PORT/v2/models/NAME
                         (inference in the server; default mobilenetv2-int8)
  --top <n>              predictions per frame (default 5)
  --smooth <a>           EMA weight of past frames, 0 (off) .. 0.99 (default 0.6)
  --threshold <p>        smoothed probability a label needs to be shown, else "unknown" (default none: a model
                         with an open-set calibration says "unknown" by its own unknown score; one without
                         shows its most probable class, and watch says so)
  --unknown-threshold <s>  smoothed unknown score above which a calibrated model's label is "unknown"
                         (default the model's own)
  --hysteresis <p>       a shown label holds until it falls below threshold - hysteresis (default min(0.1, threshold))
  --json                 one JSON line per processed frame: {"seq","ts","top":[{index,label,score}],"smoothed":{label,index,score[,unknownScore]},"ms"};
                         a multilabel model's smoothed also has "labels": every label above 50% (its label lines list them)
  --max-frames <n>       stop after n processed frames
  --as-fast-as-possible  read files, image sequences and test patterns as fast as inference goes
                         (nothing dropped) instead of in real time
  --fps <n>              frame rate for dir:// sequences and webcam: snapshots
  --retries <n|inf>      reconnect attempts in a row before giving up with an error (default 8; a frame
                         resets the count); inf waits for the source for ever (kiosks)
  --stall-timeout <t>    restart a live source that delivers no frame for this long: 500ms, 5s, 1m (a bare number is seconds)
                         (default 5s; 0 = off); the first frame may take 10 s
  --serve <host:port>    start the kiosk HTTP service (default host 127.0.0.1; POST /model needs EDGETUNE_TOKEN;
                         on a non-loopback address every request needs it when it is set)
  --model-name <name>    with --serve: the name the model is served under (/v2/models/<name>, /metrics), kept
                         across swaps: each model swapped in (POST /model, a teach training) is a new version
                         (1, 2, …; a rollback serves the previous one's) (default the --model's registry id or
                         file base name)
  --allow-host <names>   Host names served besides loopback and the bound address (comma-separated,
                         repeatable; other Host headers get 421: DNS rebinding protection)
  --teach <dir>          with --serve: teach the running model over HTTP (POST /teach/examples?label=NAME with a
                         JPEG/PNG body or &frames=N live frames, POST /teach/train, GET /teach,
                         DELETE /teach/examples/<label>/<file>; every POST/DELETE needs EDGETUNE_TOKEN); examples
                         under <dir>/examples/<label>/ (new classes, or more of the model's own), trained on a
                         worker thread (frames keep flowing) into <dir>/models/. The model must be one
                         \`finetune\` exported (its .resume.bin beside it). The kiosk page at /kiosk/ teaches
                         through the same routes
  --teach-interval <t>   least time between two frames captured by &frames=N or kept as hard frames (default 1s)
  --keep-models <n>      with --teach: trained sets kept under <dir>/models/, newest first; older ones are
                         removed after each training, never the serving one (default 3; 0 = keep all)
  --keep-hard <n>        with --teach: keep the last n frames shown as unknown (open-set score, or below --threshold) under
                         <dir>/hard/ with their scores (GET /teach/hard) (default 0 = none)
  --stats <s>            print stats to stderr every s seconds (default 5; 0 = only at the end)
  --inference <where>    worker (default: a worker thread runs the model, capture never waits) or main
  --quiet                no label lines or periodic stats (errors and the final stats still print)
${SESSION_USAGE}

${SOURCES_USAGE}`;

export const watch: Command = {
  summary: 'classify a live camera or video stream (file, v4l2, rtsp, csi, webcam, dir, test)',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      model: { type: 'string', default: 'mobilenetv2-int8', path: 'a model' },
      top: { type: 'string' },
      smooth: { type: 'string' },
      threshold: { type: 'string' },
      'unknown-threshold': { type: 'string' },
      hysteresis: { type: 'string' },
      json: { type: 'boolean', default: false },
      'max-frames': { type: 'string' },
      'as-fast-as-possible': { type: 'boolean', default: false },
      fps: { type: 'string' },
      retries: { type: 'string' },
      'stall-timeout': { type: 'string' },
      serve: { type: 'string' },
      'model-name': { type: 'string' },
      'allow-host': { type: 'string', multiple: true },
      teach: { type: 'string', path: 'folder' },
      'teach-interval': { type: 'string' },
      'keep-hard': { type: 'string' },
      'keep-models': { type: 'string' },
      stats: { type: 'string' },
      inference: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      ...SESSION_OPTIONS,
    });
    if (positionals.length !== 1) throw new EdgetuneError('EARG', `watch: expected one source, got ${positionals.length}\n\n${usage}`);
    const uri = positionals[0]!;
    const k = intOption('top', v.top, 5);
    const smoothing = numberOption('smooth', v.smooth, 0.6, 0, 0.99);
    // default none: the old 0.5 (tuned for small heads) made the 1000-class model say only "unknown"
    const threshold = numberOption('threshold', v.threshold, 0, 0, 1);
    const hysteresis = numberOption('hysteresis', v.hysteresis, Math.min(0.1, threshold), 0, threshold);
    const unknownThreshold = v['unknown-threshold'] === undefined ? undefined : numberOption('unknown-threshold', v['unknown-threshold'], 1, 0);
    const maxFrames = v['max-frames'] !== undefined ? intOption('max-frames', v['max-frames'], 1) : undefined;
    const fps = v.fps !== undefined ? numberOption('fps', v.fps, 1, 0.001) : undefined;
    const retries = retriesOption(v.retries, 8);
    const stallMs = durationOption('stall-timeout', v['stall-timeout'], DEFAULT_STALL_TIMEOUT_MS);
    const allowHosts = (v['allow-host'] ?? []).flatMap((h) => listOption(h) ?? []);
    const statsEvery = numberOption('stats', v.stats, 5, 0);
    const listen = v.serve !== undefined ? parseListen(v.serve) : undefined;
    if (v.teach !== undefined && !listen) throw new EdgetuneError('EARG', '--teach needs --serve <host:port> (the teach API is served over HTTP)');
    // like --teach: without a server the names would be taken and nothing served
    if (v['model-name'] !== undefined && !listen) throw new EdgetuneError('EARG', '--model-name needs --serve <host:port> (it names the model the server serves)');
    if (v['model-name'] !== undefined) checkModelName(v['model-name']);
    if (allowHosts.length && !listen) throw new EdgetuneError('EARG', '--allow-host needs --serve <host:port> (it names the Host headers the server answers)');
    if ((v['teach-interval'] !== undefined || v['keep-hard'] !== undefined || v['keep-models'] !== undefined) && v.teach === undefined) throw new EdgetuneError('EARG', '--teach-interval, --keep-hard and --keep-models need --teach <dir>');
    const keepModels = intOption('keep-models', v['keep-models'], 3, 0);
    const teachIntervalMs = durationOption('teach-interval', v['teach-interval'], 1000);
    const keepHard = intOption('keep-hard', v['keep-hard'], 0, 0);
    const inference = v.inference ?? 'worker';
    if (inference !== 'worker' && inference !== 'main') {
      throw invalidOption('inference', 'worker or main', inference);
    }
    const json = Boolean(v.json);
    const quiet = Boolean(v.quiet);
    const session = providersFrom(v, io, v.model);

    // With the model on the worker thread, the main thread only needs the model's description: a lazy
    // classifier opens no session here (one session, one TensorRT engine build).
    const lazy = inference === 'worker';
    // --teach after a restart: serve the model the last training swapped in (DIR/serving.json), taught from this base
    let modelRef = v.model;
    let teachBase: string | undefined;
    if (v.teach !== undefined && v.model !== undefined && existsSync(v.model)) {
      const taught = await lastTaught(v.teach, path.resolve(v.model));
      if (taught && 'file' in taught) {
        teachBase = path.resolve(v.model);
        modelRef = taught.file;
        io.stderr.write(`edgetune watch: teach: serving ${path.basename(taught.file)} again, the model the last training taught from ${path.basename(teachBase)} (${taught.result.labels.join(', ')}; ${path.join(v.teach, SERVING_FILE)})\n`);
      } else if (taught) io.stderr.write(`edgetune watch: teach: serving ${v.model}, not the model taught last: ${taught.skipped}\n`);
    }
    const clf = await loadClassifier(modelRef, { ...session, topK: k, lazy, ...(unknownThreshold !== undefined ? { unknownThreshold } : {}) });
    if (clf.unknownThreshold !== undefined) {
      if (!quiet) io.stderr.write(`edgetune watch: ${clf.id}: "unknown" above unknown score ${clf.unknownThreshold}${unknownThreshold === undefined ? " (the model's own open-set threshold)" : ''}\n`);
    } else {
      if (unknownThreshold !== undefined) io.stderr.write(`edgetune watch: ${clf.id} has no open-set calibration (no unknown score): --unknown-threshold is ignored\n`);
      if (v.threshold === undefined && !quiet) io.stderr.write(`edgetune watch: ${clf.id} has no open-set calibration: no threshold assumed, the label is the most probable class (--threshold P says "unknown" below P; finetune writes calibrated models)\n`);
    }
    for (const a of clf.assumptions) io.stderr.write(`edgetune: ${clf.id} has no registry entry; assumed ${a}\n`);
    let pipeline: StreamPipeline | undefined;
    const say = (m: string) => io.stderr.write(`edgetune watch: ${m}\n`);
    const sourceOptions: SourceOptions = {
      fps,
      onEvent: (e) => {
        if (!pipeline) say(e.message); // afterwards the pipeline reports them
      },
    };
    if (v['as-fast-as-possible']) sourceOptions.realtime = false;
    // Bounded by default: a camera that is not there ends with ffmpeg's reason, not "attempt 6/∞".
    sourceOptions.reconnect = { retries, stallTimeoutMs: stallMs > 0 ? stallMs : Infinity };
    if (v.teach !== undefined) {
      try {
        checkTeachable(teachBase ?? clf.modelPath); // before the source starts
      } catch (err) {
        await clf.dispose();
        throw err;
      }
    }
    let source;
    try {
      source = await createSource(uri, { ...sourceOptions, ...geometryOfClassifier(clf) });
    } catch (err) {
      await clf.dispose();
      throw err;
    }
    // a video or camera comes at its own rate: --fps would be taken and nothing would change
    if (fps !== undefined && source.kind !== 'dir' && source.kind !== 'webcam') say(`--fps is for dir:// sequences and webcam: snapshots; ${source.kind} frames come at their own rate (--fps ignored)`);
    const stop = interruptSignal();
    pipeline = new StreamPipeline(source, clf, {
      topK: k,
      smoothing,
      threshold,
      hysteresis,
      maxFrames,
      signal: stop.signal,
      reopen: (g) => createSource(uri, { ...sourceOptions, ...g }),
      // The inference worker opens its own session of the model with the same providers. Unless told
      // otherwise it leaves one core to capture/preprocess/sinks: on 2 cores, onnxruntime's default of a
      // thread per core made the stream reach 0.79 of bare session.run throughput, one thread 0.94–0.97
      // (npm run bench:stream with BENCH_THREADS=1).
      inference,
      sessionOptions: { providers: session.providers, threads: session.threads ?? (inference === 'worker' ? Math.max(1, availableParallelism() - 1) : undefined) },
      onWarning: session.onWarning,
    });
    const p = pipeline;
    p.on('event', (e: { type: string; message: string }) => {
      if (e.type === 'start' || e.type === 'end') {
        if (!quiet && !json) say(e.message);
      } else say(e.message);
    });
    // A closed stdout (`watch … | head`) ends the stream instead of crashing on EPIPE.
    const onStdoutError = (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') p.stop();
    };
    io.stdout.on('error', onStdoutError);
    let shown: string | undefined;
    p.on('result', (r: StreamResult) => {
      if (json) return writeJson(io, resultJson(r));
      // a multilabel model: every label over the threshold (a line when the set changes), as classify says them
      const ml = r.smoothed.labels;
      const key = ml ? ml.map((t) => t.label).join('\n') : r.smoothed.label;
      if (quiet || key === shown) return;
      shown = key;
      const when = r.pts !== undefined ? `${(r.pts / 1000).toFixed(2)}s` : new Date(r.ts).toISOString().slice(11, 23);
      const what = ml ? (r.smoothed.text ?? multilabelText(ml, 0)) : `${r.smoothed.label}${r.smoothed.index >= 0 ? ` (${(r.smoothed.score * 100).toFixed(0)}%)` : ''}`;
      io.stdout.write(`${when} frame ${r.seq}: ${what}\n`);
    });
    let server: KioskServer | undefined;
    let teach: Teach | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      if (listen) {
        const loadModel = (ref: string) => loadClassifier(ref, { ...session, topK: k, lazy });
        if (v.teach !== undefined) {
          teach = await createTeach(p, { dir: v.teach, ...(teachBase ? { base: teachBase } : {}), loadModel, intervalMs: teachIntervalMs, keepHard, keepModels, log: say, finetune: { session: { providers: session.providers, threads: session.threads } } });
        }
        // with --teach the kiosk page is served too (/kiosk/), teaching through the same API
        // the served name stays the one the watch started with: after a restart that serves the model taught
        // last (teachBase), the base's name, not the taught file's
        const served = v['model-name'] ?? (teachBase ? modelName(teachBase) : undefined);
        server = await startServer(p, { ...listen, allowHosts, ...(served !== undefined ? { modelName: served } : {}), loadModel, log: say, teach, ...(teach ? { kioskPage: { topK: k } } : {}) });
        say(`serving ${server.url} (GET /, /events, /snapshot.jpg, /healthz, /metrics, /v2/… (Open Inference Protocol)${teach ? ', /teach, /kiosk/' : ''}; POST /model${teach ? ', /teach/…' : ''} ${process.env.EDGETUNE_TOKEN ? 'with EDGETUNE_TOKEN' : 'disabled: EDGETUNE_TOKEN not set'})`);
      }
      if (statsEvery > 0 && !quiet) timer = setInterval(() => say(formatStats(p.stats())), statsEvery * 1000);
      const final = await p.run();
      say(`${stop.signal.aborted ? 'stopped' : 'done'}: ${final.processed} frames with ${p.model.id} on ${p.provider} in ${final.uptimeSeconds}s (${final.avgFpsOut} fps)`);
      say(formatStats(final));
      return 0;
    } finally {
      if (timer) clearInterval(timer);
      io.stdout.off('error', onStdoutError);
      await teach?.close();
      await server?.close();
      stop.dispose();
      await p.model.dispose();
    }
  },
};
