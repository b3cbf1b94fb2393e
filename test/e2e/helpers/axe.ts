/**
 * axe-core in the browser tests: its source (the npm package, no network) is evaluated in the page
 * through the DevTools protocol, which the page's Content Security Policy does not cover, then
 * `axe.run` checks the whole document. Serious and critical violations fail a test.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

const require = createRequire(import.meta.url);
let source: Promise<string> | undefined;

/** One violation as axe reports it, trimmed to what a failure message needs. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe on the page; returns the violations of impact `serious` or `critical`. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  source ??= readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(await source);
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'] }).then((r) => r.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' — ' + (n.failureSummary || '').split('\\n').slice(0, 3).join(' ')),
  })))`)) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A readable list of violations for a failing expectation. */
export function describeViolations(where: string, violations: AxeViolation[]): string {
  return violations.map((v) => `${where}: ${v.id} (${v.impact}) ${v.help}\n  ${v.nodes.join('\n  ')}`).join('\n');
}
