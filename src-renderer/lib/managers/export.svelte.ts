/**
 * State of the export dialog: export the conversation on screen or all of them (Markdown, HTML,
 * PDF, JSON), and import a JSON export. Main shows the save and open dialogs and writes the files;
 * the renderer learns the file's name and the counts, or a clear error. Conversations already in
 * Owlery are left out of an import and named; copies of them are imported on request.
 */
import { EXPORT_FORMATS } from '../../../src-shared/chat.ts';
import type { ExportFormat } from '../../../src-shared/chat.ts';
import type { ConversationId } from '../../../src-shared/domain.ts';
import type { ImportOutcome, OwleryClient } from '../../../src-shared/ipc/index.ts';
import { describeError, isCancellation, plural } from '../components/models/format.ts';

/** The part of the client the export dialog uses. */
export type ExportClient = Pick<OwleryClient, 'export'>;

/** Which conversations to export. */
export type ExportScope = 'conversation' | 'all';

/** Formats in words, with what each is good for. */
export const FORMAT_TEXT: Readonly<Record<ExportFormat, { label: string; help: string }>> = {
  markdown: { label: 'Markdown', help: 'Plain text for notes apps, with the photos in a folder next to it.' },
  html: { label: 'Web page (HTML)', help: 'One file with the photos inside; opens in any browser.' },
  pdf: { label: 'PDF', help: 'For printing or sharing; the photos are included.' },
  json: { label: 'Owlery backup (JSON)', help: 'Everything, including other branches, to import into Owlery later.' },
};

/** What the last action did, in words, for the dialog's status line. */
export interface ExportOutcome {
  kind: 'exported' | 'imported' | 'cancelled';
  message: string;
  /** The conversations an import added (to open one). */
  importedIds?: ConversationId[];
  /** Conversations an import left out as already here, and the token to import copies of them. */
  duplicates?: { token: string; sourceIds: ConversationId[] };
}

/** Manages the export dialog; see the module comment. */
export class ExportManager {
  /** The chosen format. */
  format = $state<ExportFormat>('html');
  /** The chosen scope. */
  scope = $state<ExportScope>('conversation');
  /** What is running now. */
  busy = $state<'export' | 'import' | null>(null);
  /** The outcome of the last action. */
  outcome = $state<ExportOutcome | null>(null);
  /** The failure of the last action, in plain words. */
  error = $state<string | null>(null);

  /** Every format, in menu order. */
  readonly formats = EXPORT_FORMATS;

  constructor(private readonly client: ExportClient) {}

  /**
   * Exports with the chosen format: the conversation `conversationId`, or everything when the
   * scope is `all` or no conversation is open.
   */
  async export(conversationId: ConversationId | null): Promise<ExportOutcome | null> {
    const format = this.format;
    const all = this.scope === 'all' || conversationId === null;
    return this.run('export', async () => {
      const result = all ? await this.client.export.all({ format }) : await this.client.export.conversation({ id: conversationId, format });
      if (!result.saved || result.fileName === null) return { kind: 'cancelled', message: 'Nothing was saved.' };
      const skipped = result.skipped ?? [];
      const left = skipped.length === 0 ? '' : ` Left out: ${skipped.slice(0, 3).join('; ')}${skipped.length > 3 ? `; and ${skipped.length - 3} more` : ''}.`;
      return {
        kind: 'exported',
        message: `Saved ${plural(result.conversations, 'conversation')} as ${FORMAT_TEXT[format].label} to “${result.fileName}”.${left}`,
      };
    });
  }

  /** Imports an exported JSON file (main shows the open dialog). */
  async import(): Promise<ExportOutcome | null> {
    return this.run('import', async () => importOutcome(await this.client.export.import()));
  }

  /** Imports copies of the conversations the last import left out as already here. */
  async importCopies(): Promise<ExportOutcome | null> {
    const pending = this.outcome?.duplicates;
    if (!pending) return null;
    return this.run('import', async () => importOutcome(await this.client.export.importCopies(pending)));
  }

  /** Forgets the last outcome and error (when the dialog opens again). */
  reset(): void {
    this.outcome = null;
    this.error = null;
  }

  private async run(kind: 'export' | 'import', body: () => Promise<ExportOutcome>): Promise<ExportOutcome | null> {
    if (this.busy) return null;
    this.busy = kind;
    this.error = null;
    this.outcome = null;
    try {
      this.outcome = await body();
      return this.outcome;
    } catch (err) {
      if (!isCancellation(err)) this.error = `${kind === 'export' ? 'The export failed' : 'The import failed'}: ${lowerFirst(describeError(err))}`;
      return null;
    } finally {
      this.busy = null;
    }
  }
}

/** An import's outcome in words. */
function importOutcome({ imported, result, copiesToken }: ImportOutcome): ExportOutcome {
  if (!imported || !result) return { kind: 'cancelled', message: 'Nothing was imported.' };
  const parts: string[] = [];
  if (result.conversations.length > 0) {
    const photos = result.imagesAdded + result.imagesReused;
    const photoText = photos === 0 ? '' : `, ${plural(photos, 'photo')}${result.imagesReused > 0 ? ` (${formatReused(result.imagesReused)})` : ''}`;
    parts.push(`Imported ${plural(result.conversations.length, 'conversation')} with ${plural(result.messages, 'message')}${photoText}.`);
  }
  const dups = result.duplicates ?? [];
  if (dups.length > 0) {
    const names = dups.slice(0, 3).map((d) => `“${d.title.trim() || 'Untitled conversation'}”`);
    const more = dups.length > 3 ? ` and ${dups.length - 3} more` : '';
    const left = result.conversations.length > 0 ? 'left out' : 'nothing was imported';
    parts.push(
      dups.length === 1
        ? `${names[0]} is already in Owlery; ${left === 'left out' ? 'it was left out' : left}.`
        : `${names.join(', ')}${more} are already in Owlery; ${left === 'left out' ? 'they were left out' : left}.`,
    );
  }
  if (parts.length === 0) parts.push('The file has no conversations.');
  return {
    kind: 'imported',
    message: parts.join(' '),
    importedIds: result.conversations.map((c) => c.id),
    ...(copiesToken && dups.length > 0 ? { duplicates: { token: copiesToken, sourceIds: dups.map((d) => d.sourceId) } } : {}),
  };
}

function formatReused(n: number): string {
  return `${n} already in Owlery`;
}

/** `Something went wrong` → `something went wrong`, but `PDF export…` stays. */
function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text[0]!.toLowerCase() + text.slice(1) : text;
}

let shared: ExportManager | null = null;

/** The app's export manager (remembers the last format chosen). */
export function getExportManager(client: ExportClient): ExportManager {
  shared ??= new ExportManager(client);
  return shared;
}
