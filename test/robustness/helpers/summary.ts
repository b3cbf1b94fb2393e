/**
 * The robustness suite's figures: every test file of test/robustness records what it did (faults
 * injected and survived, bad inputs tried and rejected, messages lost) under its own section of
 * `test-results/robustness-summary.json` (git-ignored), and prints one line per category.
 *
 * Test files run in separate processes, so the file is updated under a lock (an exclusive lock
 * file, created with `wx`) and each file replaces only its own section; the totals are recomputed
 * from all sections on every write.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../helpers/tiny-model.ts';

/** Where the summary goes. */
export const SUMMARY_FILE = join(REPO_ROOT, 'test-results', 'robustness-summary.json');

/** One category's figures. All counts; `notes` for anything a count does not say. */
export interface CategoryFigures {
  /** Faults injected (processes killed, disks filled, databases locked…). */
  faultsInjected?: number;
  /** Faults after which the app reported a clear error and kept working with nothing lost. */
  faultsSurvived?: number;
  /** Hostile or malformed inputs tried. */
  badInputsTried?: number;
  /** Of those, refused with the expected typed error (or, for fuzzed images that still decode, handled). */
  badInputsRejected?: number;
  /** Of the inputs tried, those that were still valid and were processed normally. */
  badInputsAccepted?: number;
  /** Engine process restarts caused by bad input (must be 0). */
  engineRestarts?: number;
  /** Messages (questions or answers) missing or different after the run. */
  messagesLost?: number;
  /** Free-form details (sizes, memory figures, per-case lists). */
  notes?: Record<string, unknown>;
}

interface SummaryFile {
  generatedAt: string;
  sections: Record<string, { updatedAt: string; categories: Record<string, CategoryFigures> }>;
  totals: {
    faultsInjected: number;
    faultsSurvived: number;
    badInputsTried: number;
    badInputsRejected: number;
    badInputsStillValid: number;
    engineRestarts: number;
    messagesLost: number;
  };
}

/** Collects the figures of one test file; {@link Figures.write} prints and saves them. */
export class Figures {
  private readonly categories = new Map<string, CategoryFigures>();

  /** `section` names the test file (e.g. `engine-faults`). */
  constructor(private readonly section: string) {}

  /** The figures of a category (created empty). */
  get(category: string): CategoryFigures {
    let c = this.categories.get(category);
    if (!c) {
      c = {};
      this.categories.set(category, c);
    }
    return c;
  }

  /** Adds to counts of a category. */
  add(category: string, counts: Omit<CategoryFigures, 'notes'>): void {
    const c = this.get(category);
    for (const [k, v] of Object.entries(counts) as [keyof Omit<CategoryFigures, 'notes'>, number][]) c[k] = (c[k] ?? 0) + v;
  }

  /** Records a note under a category. */
  note(category: string, key: string, value: unknown): void {
    const c = this.get(category);
    (c.notes ??= {})[key] = value;
  }

  /** Prints one line per category and merges this section into {@link SUMMARY_FILE}. */
  write(): void {
    if (this.categories.size === 0) return;
    for (const [name, c] of this.categories) console.log(`[robustness] ${name}: ${formatLine(c)}`);
    withLock(() => {
      const current = readSummary();
      current.sections[this.section] = { updatedAt: new Date().toISOString(), categories: Object.fromEntries(this.categories) };
      current.generatedAt = new Date().toISOString();
      current.totals = totals(current.sections);
      const tmp = `${SUMMARY_FILE}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(current, null, 2)}\n`);
      renameSync(tmp, SUMMARY_FILE);
      const t = current.totals;
      console.log(
        `[robustness] totals so far (all sections): faults ${t.faultsSurvived}/${t.faultsInjected} survived, ` +
          `bad inputs tried ${t.badInputsTried}: rejected ${t.badInputsRejected}, still valid ${t.badInputsStillValid}; engine restarts ${t.engineRestarts}, messages lost ${t.messagesLost}`,
      );
    });
  }
}

function formatLine(c: CategoryFigures): string {
  const parts: string[] = [];
  if (c.faultsInjected !== undefined) parts.push(`faults injected ${c.faultsInjected}, survived ${c.faultsSurvived ?? 0}`);
  if (c.badInputsTried !== undefined) {
    parts.push(`bad inputs tried ${c.badInputsTried}, rejected ${c.badInputsRejected ?? 0}${c.badInputsAccepted ? `, still valid and processed ${c.badInputsAccepted}` : ''}`);
  }
  if (c.engineRestarts !== undefined) parts.push(`engine restarts ${c.engineRestarts}`);
  if (c.messagesLost !== undefined) parts.push(`messages lost ${c.messagesLost}`);
  return parts.join('; ') || 'no counts';
}

function readSummary(): SummaryFile {
  try {
    const parsed = JSON.parse(readFileSync(SUMMARY_FILE, 'utf8')) as Partial<SummaryFile>;
    if (parsed && typeof parsed === 'object' && parsed.sections && typeof parsed.sections === 'object') {
      return { generatedAt: String(parsed.generatedAt ?? ''), sections: parsed.sections, totals: totals(parsed.sections) };
    }
  } catch {
    // missing or damaged: start over
  }
  return { generatedAt: '', sections: {}, totals: totals({}) };
}

function totals(sections: SummaryFile['sections']): SummaryFile['totals'] {
  const t = { faultsInjected: 0, faultsSurvived: 0, badInputsTried: 0, badInputsRejected: 0, badInputsStillValid: 0, engineRestarts: 0, messagesLost: 0 };
  for (const s of Object.values(sections)) {
    for (const c of Object.values(s.categories)) {
      t.faultsInjected += c.faultsInjected ?? 0;
      t.faultsSurvived += c.faultsSurvived ?? 0;
      t.badInputsTried += c.badInputsTried ?? 0;
      t.badInputsRejected += c.badInputsRejected ?? 0;
      t.badInputsStillValid += c.badInputsAccepted ?? 0;
      t.engineRestarts += c.engineRestarts ?? 0;
      t.messagesLost += c.messagesLost ?? 0;
    }
  }
  return t;
}

/** Runs `fn` holding `<summary>.lock`; a lock older than 30 s is taken to be stale. */
function withLock(fn: () => void): void {
  mkdirSync(join(SUMMARY_FILE, '..'), { recursive: true });
  const lock = `${SUMMARY_FILE}.lock`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - statSync(lock).mtimeMs > 30_000) rmSync(lock, { force: true });
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new Error(`could not lock ${lock}`, { cause: err });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
  try {
    fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
