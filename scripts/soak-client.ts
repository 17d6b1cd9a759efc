// The HTTP clients of `npm run bench:soak`, run as a separate process so that the benchmark measures the
// server's memory alone: `node dist/scripts/soak-client.js <base-url> <routes>` (routes comma-separated).
// Every 200 ms /healthz and /metrics, every 400 ms /snapshot.jpg, and every 2 s an /events or
// /stream.mjpg stream read for a second and dropped — a dashboard polling and browsers coming and
// going. Prints the count of completed requests every 5 s; runs until killed.

const [base, list] = process.argv.slice(2);
if (!base || !list) {
  process.stderr.write('usage: node dist/scripts/soak-client.js <base-url> <route,route,...>\n');
  process.exit(2);
}
const routes = new Set(list.split(','));
let done = 0;
let tick = 0;

async function get(route: string, holdMs = 0): Promise<void> {
  if (!routes.has(route)) return;
  const ac = new AbortController();
  try {
    const res = await fetch(new URL(route, base), { signal: ac.signal });
    if (holdMs && res.body) {
      const reader = res.body.getReader();
      const stop = setTimeout(() => ac.abort(), holdMs);
      while (!(await reader.read().catch(() => ({ done: true }))).done);
      clearTimeout(stop);
    } else await res.arrayBuffer();
    done++;
  } catch {
    // an aborted stream, or a request cut by the end of the run
  }
}

setInterval(() => {
  tick++;
  void get('/healthz');
  void get('/metrics');
  if (tick % 2 === 0) void get('/snapshot.jpg');
  if (tick % 10 === 0) void get('/events', 1000);
  if (tick % 10 === 5) void get('/stream.mjpg', 1000);
  if (tick % 25 === 0) process.stdout.write(`${done}\n`);
}, 200);
