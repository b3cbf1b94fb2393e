/**
 * "Copy diagnostics": a plain-text report a user can paste into a bug report — versions, the
 * machine, the engine's provider report, the models installed, the settings that change how the
 * model runs, and the last warnings and errors of the logs. Never message text, photos or file
 * paths (the home folder is shown as `~`, the data folder as `<data>`).
 */
import { arch, cpus, freemem, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { readRecentLogs, redactHome } from '../logging/logger.ts';
import type { Services } from './composition.ts';

/** Log files the report reads (src-main/logging). */
const LOGS = ['main', 'engine', 'cli'];

const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;

/** The report; see the module comment. */
export async function collectDiagnostics(services: Pick<Services, 'appInfo' | 'dataDir' | 'engine' | 'models' | 'settings'>): Promise<string> {
  const { appInfo } = services;
  const scrub = (text: string): string => redactHome(text.split(services.dataDir).join('<data>'));
  const status = services.engine.status();
  const s = services.settings.get();
  const lines: string[] = [];
  lines.push(`${appInfo.name} ${appInfo.version} diagnostics, ${new Date().toISOString()}`);
  lines.push('');
  lines.push('## Versions');
  for (const [k, v] of Object.entries(appInfo.versions)) lines.push(`- ${k}: ${v}`);
  lines.push(`- os: ${platform()} ${release()} ${arch()}`);
  lines.push(`- cpu: ${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`);
  lines.push(`- memory: ${gib(totalmem())} (${gib(freemem())} free)`);
  lines.push('');
  lines.push('## Engine');
  lines.push(`- state: ${status.state}${status.restarts ? ` (restarted ${status.restarts}×)` : ''}`);
  lines.push(`- model: ${status.modelId ?? 'none'}`);
  if (status.provider) {
    lines.push(`- provider: ${status.provider.used} (asked for ${status.provider.requested})`);
    for (const a of status.provider.attempts) lines.push(`  - ${a.provider}: ${a.ok ? 'ok' : scrub(a.error ?? 'failed')}`);
  }
  if (status.contextLimit) lines.push(`- context window: ${status.contextLimit} tokens`);
  if (status.fasterStartSkipped) lines.push(`- faster start not used: ${scrub(status.fasterStartSkipped)}`);
  if (status.error) lines.push(`- last error: ${status.error.code} ${scrub(status.error.message)}`);
  lines.push('');
  lines.push('## Settings');
  lines.push(`- execution provider: ${s.executionProvider}; threads: ${s.threads || 'automatic'}; faster start: ${s.fasterStart ? 'on' : 'off'}`);
  lines.push(`- offline mode: ${s.offlineMode ? 'on' : 'off'}; aspect mode: ${s.aspectMode}`);
  lines.push('');
  lines.push('## Models');
  const models = await services.models.list().catch(() => []);
  if (models.length === 0) lines.push('- none installed');
  for (const m of models) {
    const q = m.quantization ? Object.entries(m.quantization).map(([k, v]) => `${k} ${v}`).join(', ') : 'unknown';
    lines.push(`- ${m.id}${m.active ? ' (active)' : ''}: ${(m.sizeBytes / 1e9).toFixed(2)} GB, ${q}, converter ${m.converterVersion ?? '?'}, ${m.verification.state}`);
  }
  lines.push('');
  lines.push('## Recent warnings and errors');
  const recent = readRecentLogs(join(services.dataDir, 'logs'), LOGS, { level: 'warn', count: 20 });
  if (recent.length === 0) lines.push('- none');
  for (const r of recent) {
    const err = r.err ? `: ${r.err.code ? `${r.err.code} ` : ''}${r.err.message}` : '';
    lines.push(`- ${r.t} ${r.name} ${r.level}: ${scrub(`${r.msg}${err}`)}`);
  }
  return `${lines.join('\n')}\n`;
}
