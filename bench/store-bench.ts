/**
 * Store benchmark: builds a history of 10,000 conversations and 1,000,000 messages (deterministic
 * text with a Zipf word distribution and realistic lengths, a few regenerated answers) and times
 * the hot reads: the sidebar list (first page and a deep page), a thread fetch and several
 * searches. Prints min/median/max over the runs and saves JSON to `bench/results/store-<date>.json`.
 *
 *   npx tsx bench/store-bench.ts [--conversations 10000] [--messages 1000000] [--runs 7]
 *                                [--db /path/to/bench.sqlite] [--keep]
 *
 * With `--db` pointing at a file built before (and `--keep`), the build is skipped.
 * Target: every timed operation under 50 ms.
 */
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Store } from '../src-main/store/store.ts';
import { mulberry32 } from '../src-shared/random.ts';

interface Args {
  conversations: number;
  messages: number;
  runs: number;
  db: string;
  keep: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { conversations: 10_000, messages: 1_000_000, runs: 7, db: '', keep: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--keep') args.keep = true;
    else if (a === '--conversations') args.conversations = Number(argv[++i]);
    else if (a === '--messages') args.messages = Number(argv[++i]);
    else if (a === '--runs') args.runs = Number(argv[++i]);
    else if (a === '--db') args.db = argv[++i];
    else throw new Error(`Unknown argument ${a}`);
  }
  if (!args.db) args.db = join(tmpdir(), `owlery-store-bench-${args.conversations}-${args.messages}`, 'history.sqlite');
  return args;
}

const rng = mulberry32;

const COMMON = (
  'the of and a to in is it that this with on for as are be at by from or an was there which has have its ' +
  'photo image picture shows see can you what where how many color colour left right front behind near ' +
  'owl bird tree branch sky cloud water river lake mountain street car bus bicycle dog cat person man woman child ' +
  'red green blue yellow white black brown orange small large old new wooden metal glass stone building window door ' +
  'table chair plate food cup bottle book sign text written reads background foreground light shadow sunny rainy ' +
  'appears looks likely probably seems standing sitting walking holding wearing shirt hat jacket grass flowers field'
).split(' ');

/** A vocabulary of common words followed by synthetic rarer ones, sampled with a Zipf law. */
function makeVocabulary(size: number, rand: () => number): string[] {
  const syl = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vi', 'so', 'pe', 'da', 'gu', 'ri', 'an', 'el', 'or', 'ust', 'ber', 'con', 'tra', 'ing'];
  const words = [...COMMON];
  const seen = new Set(words);
  while (words.length < size) {
    const n = 2 + Math.floor(rand() * 3);
    let w = '';
    for (let i = 0; i < n; i++) w += syl[Math.floor(rand() * syl.length)];
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

function zipfSampler(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / Math.pow(i + 1, s);
    cdf[i] = sum;
  }
  return () => {
    const x = rand() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function makeTextGenerator(seed: number): (minChars: number, meanChars: number, maxChars: number) => string {
  const rand = rng(seed);
  const vocab = makeVocabulary(30_000, rand);
  const pick = zipfSampler(vocab.length, 1.07, rand);
  return (minChars, meanChars, maxChars) => {
    // Log-normal-ish length around the mean, clamped.
    const u = Math.max(1e-9, rand());
    const v = rand();
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    const target = Math.min(maxChars, Math.max(minChars, Math.round(meanChars * Math.exp(0.6 * normal - 0.18))));
    const parts: string[] = [];
    let len = 0;
    let sentence = 0;
    while (len < target) {
      let w = vocab[pick()];
      if (sentence === 0) w = w[0].toUpperCase() + w.slice(1);
      sentence++;
      if (sentence > 6 && rand() < 0.12) {
        w += '.';
        sentence = 0;
      } else if (rand() < 0.04) w += ',';
      parts.push(w);
      len += w.length + 1;
    }
    return parts.join(' ');
  };
}

function build(file: string, conversations: number, messages: number): { seconds: number; bytes: number } {
  const t0 = performance.now();
  const { store } = Store.open(file);
  const db = store.db;
  const text = makeTextGenerator(20240229);
  const rand = rng(7);
  const insertConv = db.prepare(
    'INSERT INTO conversations (id, title, created_at, updated_at, model_id, pinned, active_leaf_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const finishConv = db.prepare('UPDATE conversations SET updated_at = ?, active_leaf_id = ? WHERE id = ?');
  const insertMsg = db.prepare(
    'INSERT INTO messages (id, conversation_id, parent_id, role, text, status, created_at, updated_at, settings_json, stats_json, model_package_id, model_sha256) ' +
      "VALUES (?, ?, ?, ?, ?, 'complete', ?, ?, ?, ?, ?, ?)",
  );
  const settings = JSON.stringify({ temperature: 0.7, topP: 0.9, maxNewTokens: 512, aspectMode: 'resize' });
  const stats = JSON.stringify({ provider: 'cuda', promptTokens: 180, outputTokens: 120, totalMs: 2400, decodeTokensPerSecond: 55 });
  const modelSha = 'ab'.repeat(32);
  const start = Date.UTC(2024, 0, 1);
  const span = 2 * 365 * 86_400_000;
  let msgId = 0;
  // Conversation sizes vary in pairs (100 + d, 100 - d) so the total is exact.
  const per = Math.floor(messages / conversations);
  const sizes = new Array<number>(conversations).fill(per);
  for (let c = 0; c + 1 < conversations; c += 2) {
    const d = Math.floor(rand() * per * 0.9);
    sizes[c] += d;
    sizes[c + 1] -= d;
  }
  sizes[conversations - 1] += messages - per * conversations;
  const batch = 100;
  for (let c0 = 0; c0 < conversations; c0 += batch) {
    db.transaction(() => {
      for (let c = c0; c < Math.min(conversations, c0 + batch); c++) {
        const convId = c + 1;
        const created = start + Math.floor((span * c) / conversations);
        let t = created;
        insertConv.run(convId, text(10, 32, 70).replace(/[.,]/g, ''), created, created, 'mplug-owl2-llama2-7b-q4', c % 97 === 0 ? 1 : 0, null);
        let parent: number | null = null;
        let k = 0;
        const add = (role: 'user' | 'assistant', parentId: number | null): number => {
          const id = ++msgId;
          t += 1000 + Math.floor(rand() * 60_000);
          const isUser = role === 'user';
          const body = isUser ? text(8, 90, 600) : text(40, 420, 3000);
          insertMsg.run(id, convId, parentId, role, body, t, t, isUser ? null : settings, isUser ? null : stats,
            isUser ? null : 'mplug-owl2-llama2-7b-q4', isUser ? null : modelSha);
          k++;
          return id;
        };
        while (k < sizes[c]) {
          const question = add('user', parent);
          if (k >= sizes[c]) {
            parent = question;
            break;
          }
          let answer = add('assistant', question);
          // About 5% of answers were regenerated: a sibling under the same question.
          while (k < sizes[c] && rand() < 0.05) answer = add('assistant', question);
          parent = answer;
        }
        finishConv.run(t, parent, convId);
      }
    })();
    if ((c0 / batch) % 10 === 0) process.stdout.write(`\r  built ${c0 + batch}/${conversations} conversations, ${msgId} messages`);
  }
  process.stdout.write('\n');
  db.exec("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')");
  db.exec('ANALYZE');
  store.close();
  return { seconds: (performance.now() - t0) / 1000, bytes: statSync(file).size };
}

interface Timing {
  name: string;
  runs: number;
  minMs: number;
  medianMs: number;
  maxMs: number;
  detail?: string;
}

function time(name: string, runs: number, fn: () => string | void): Timing {
  fn(); // warm-up (page cache, statement preparation)
  const samples: number[] = [];
  let detail: string | undefined;
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const d = fn();
    samples.push(performance.now() - t0);
    if (d) detail = d;
  }
  samples.sort((a, b) => a - b);
  const r = (x: number) => Math.round(x * 100) / 100;
  return { name, runs, minMs: r(samples[0]), medianMs: r(samples[Math.floor(samples.length / 2)]), maxMs: r(samples[samples.length - 1]), detail };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  let buildInfo: { seconds: number; bytes: number } | null = null;
  if (!(args.keep && existsSync(args.db))) {
    rmSync(join(args.db, '..'), { recursive: true, force: true });
    mkdirSync(join(args.db, '..'), { recursive: true });
    console.log(`Building ${args.conversations} conversations / ${args.messages} messages in ${args.db}`);
    buildInfo = build(args.db, args.conversations, args.messages);
    console.log(`  built in ${buildInfo.seconds.toFixed(1)} s, ${(buildInfo.bytes / 2 ** 20).toFixed(0)} MiB`);
  }

  const openStart = performance.now();
  const { store } = Store.open(args.db);
  const openMs = performance.now() - openStart;
  const counts = store.db.prepare('SELECT (SELECT count(*) FROM conversations) AS c, (SELECT count(*) FROM messages) AS m').get() as { c: number; m: number };
  const results: Timing[] = [];
  const runs = Math.max(5, args.runs);

  results.push(time('list: first page (50)', runs, () => `${store.listConversations({ limit: 50 }).items.length} rows`));
  // A deep page: the cursor of the row about 90% down the list.
  const deepRow = store.db
    .prepare('SELECT pinned, updated_at, id FROM conversations WHERE deleted_at IS NULL ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT 1 OFFSET ?')
    .get(Math.floor(counts.c * 0.9)) as { pinned: number; updated_at: number; id: number };
  const deepCursor = `${deepRow.pinned}.${deepRow.updated_at}.${deepRow.id}`;
  results.push(time('list: deep page (50 after row 90%)', runs, () => `${store.listConversations({ limit: 50, cursor: deepCursor }).items.length} rows`));

  const big = store.db.prepare('SELECT conversation_id AS id, count(*) AS n FROM messages GROUP BY conversation_id ORDER BY n DESC LIMIT 1').get() as { id: number; n: number };
  const mid = Math.max(1, Math.floor(counts.c / 2));
  results.push(time(`thread: largest conversation (${big.n} messages)`, runs, () => `${store.getThread(big.id).messages.length} on thread`));
  results.push(time('thread: a typical conversation', runs, () => `${store.getThread(mid).messages.length} on thread`));

  const queries = [
    'owl', 'photo', 'the', 'red car', 'mountain river', 'flowers field', 'kalo', 'wooden bench near', 'branch sitting owl',
    '"sitting on"', 'contra', 'phot', 'xyzzy nothing', 'AND OR "', '🦉',
  ];
  for (const q of queries) {
    results.push(time(`search: ${JSON.stringify(q)}`, runs, () => {
      const r = store.search(q, { limit: 20 });
      return `${r.hits.length} hits, ${r.messageOrder}`;
    }));
  }
  const closeStart = performance.now();
  store.close();
  const closeMs = performance.now() - closeStart;

  const nameWidth = Math.max(...results.map((r) => r.name.length));
  console.log(`\n${counts.c} conversations, ${counts.m} messages; ${runs} runs each (after a warm-up run); node ${process.version}, ${cpus()[0]?.model ?? 'cpu'}`);
  console.log(`${'operation'.padEnd(nameWidth)}  ${'min'.padStart(8)}  ${'median'.padStart(8)}  ${'max'.padStart(8)}  (ms)`);
  for (const r of results) {
    console.log(`${r.name.padEnd(nameWidth)}  ${r.minMs.toFixed(2).padStart(8)}  ${r.medianMs.toFixed(2).padStart(8)}  ${r.maxMs.toFixed(2).padStart(8)}  ${r.detail ?? ''}`);
  }
  console.log(`(once) open: ${openMs.toFixed(1)} ms, close (PRAGMA optimize + WAL checkpoint): ${closeMs.toFixed(1)} ms`);
  const slow = results.filter((r) => r.medianMs >= 50);
  console.log(slow.length === 0 ? '\nAll medians under 50 ms.' : `\nOver 50 ms (median): ${slow.map((r) => r.name).join(', ')}`);

  const outDir = join(import.meta.dirname, 'results');
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `store-${new Date().toISOString().slice(0, 10)}.json`);
  writeFileSync(out, JSON.stringify({
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model,
    conversations: counts.c,
    messages: counts.m,
    build: buildInfo,
    openMs,
    closeMs,
    dbBytes: statSync(args.db).size,
    results,
  }, null, 2));
  console.log(`Saved ${out}`);
  if (!args.keep) rmSync(join(args.db, '..'), { recursive: true, force: true });
}

main();
