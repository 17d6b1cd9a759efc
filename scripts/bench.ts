// `npm run bench`: the classify pipeline's stage timings for every local ImageNet model at batch 1
// and 8 on a 1080x1080 JPEG, plus pipelined throughput vs bare session.run, in one table.

import path from 'node:path';
import { benchModel, benchTable } from '../runtime/classify/bench.js';
import { table } from '../runtime/core/format.js';
import { sharedRoot } from '../runtime/io/paths.js';

const image = path.join(sharedRoot(), 'camera', 'winml_dog.jpg');
const models = (process.env.BENCH_MODELS ?? 'mobilenetv2-int8,squeezenet1.1,squeezenet1.1-fp16,mobilenetv1-0.25-128').split(',');
const rows = [];
for (const m of models) rows.push(...(await benchModel(m, image, { batches: [1, 8], iterations: Number(process.env.BENCH_ITERATIONS ?? 30), providers: ['cpu'] })));
process.stdout.write(`image: ${image}\n`);
process.stdout.write(table(benchTable(rows)));
