// `edgetune bench`: per-stage medians for a model on one image, end-to-end vs bare session.run.

import { benchModel, benchTable } from '../../classify/bench.js';
import { intOption, invalidOption, listOption, OPTION_RANGES as R, parse, writeJson, type Command } from '../args.js';
import { table } from '../../core/format.js';
import { sharedRoot } from '../../io/paths.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { EdgetuneError } from '../../core/errors.js';

const usage = `Usage: edgetune bench [options]

Median decode / preprocess / session.run / postprocess / end-to-end times and the ratio
end-to-end / bare session.run, all measured in one run.

Options:
  --model <id|file>   model (default mobilenetv2-int8); repeat with commas: a,b
  --image <file>      test image (default: the source repository's ../shared/camera/winml_dog.jpg, 1080x1080)
  --batch <list>      batch sizes, e.g. 1,8 (default 1); fixed-batch models only run 1
  --iterations <n>    timed iterations per batch size (default 30)
  --json              one JSON line per model and batch size
${SESSION_USAGE}`;

export const bench: Command = {
  summary: 'time decode, preprocess, session.run and postprocess for a model',
  usage,
  async run(argv, io) {
    const { values: v } = parse(
      argv,
      {
        model: { type: 'string', default: 'mobilenetv2-int8', path: 'a model' },
        image: { type: 'string', path: 'file' },
        batch: { type: 'string', default: '1' },
        iterations: { type: 'string' },
        json: { type: 'boolean', default: false },
        ...SESSION_OPTIONS,
      },
      false,
    );
    const batches = listOption(v.batch)!.map((b) => intOption('batch', b, 1, ...R.batch));
    if (!batches.length) throw invalidOption('batch', 'a list of positive integers', v.batch);
    const image = v.image ?? path.join(sharedRoot(), 'camera', 'winml_dog.jpg');
    if (v.image === undefined && !existsSync(image)) {
      throw new EdgetuneError('EARG', `bench needs --image <file>: the default test image ${image} is only in edgetune's source repository`);
    }
    const rows = [];
    for (const model of listOption(v.model)!) {
      const got = await benchModel(model, image, { ...providersFrom(v, io), batches, iterations: intOption('iterations', v.iterations, 30, ...R.iterations) });
      // a fixed-batch model runs batch 1 only: say which sizes were left out rather than drop their rows silently
      const left = batches.filter((b) => !got.some((r) => r.batch === b));
      if (left.length) io.stderr.write(`edgetune bench: ${model} has a fixed batch dimension: batch ${left.join(', ')} not run\n`);
      rows.push(...got);
    }
    if (v.json) for (const r of rows) writeJson(io, r);
    else io.stdout.write(table(benchTable(rows)));
    return 0;
  },
};
