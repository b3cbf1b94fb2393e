/**
 * Messages: answers render as Markdown that cannot run anything (no raw HTML, no `javascript:`
 * links, no remote images), code blocks get a Copy button, user text stays plain text; streamed
 * deltas grow the answer with a live phase, and the end shows statistics and actions; the live
 * region gets the answer in batches, not per token.
 */
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import MarkdownView from '../../src-renderer/lib/components/chat/MarkdownView.svelte';
import MessageItem from '../../src-renderer/lib/components/chat/MessageItem.svelte';
import { isSafeLinkUrl, renderMarkdown } from '../../src-renderer/lib/markdown.ts';
import { Announcer } from '../../src-renderer/lib/managers/announcer.svelte.ts';
import { ChatManager } from '../../src-renderer/lib/managers/chat.svelte.ts';
import { fakeMain, stats, threadMessage } from './helpers/chat-fakes.ts';
import MessageHost from './helpers/MessageHost.svelte';

function renderAnswer(text: string): HTMLElement {
  const { container } = render(MarkdownView, { props: { text } });
  return container;
}

describe('Markdown sanitising', () => {
  it('shows <script> and raw HTML as text', () => {
    const c = renderAnswer('Hi <script>alert(1)</script> and <img src=x onerror="alert(2)"> <b>bold?</b>\n\n<iframe src="https://evil.example"></iframe>');
    expect(c.querySelector('script, img, iframe, b')).toBeNull();
    expect(c.textContent).toContain('<script>alert(1)</script>');
    expect(c.textContent).toContain('<img src=x onerror="alert(2)">');
    expect(c.innerHTML).not.toMatch(/<[a-z]+[^>]*\son\w+=/i);
  });

  it('keeps http(s) and mailto links, opening in a new window; drops javascript:, data:, file: and relative links', () => {
    const c = renderAnswer(
      '[ok](https://example.com/a?b=1) [mail](mailto:owl@example.com) [js](javascript:alert(1)) [js2](JaVaScRiPt:alert(1)) ' +
        '[js3](java\tscript:alert(1)) [data](data:text/html,<b>x</b>) [file](file:///etc/passwd) [rel](../settings) <javascript:alert(1)> see https://example.org/x',
    );
    const hrefs = [...c.querySelectorAll('a')].map((a) => a.getAttribute('href'));
    expect(hrefs).toEqual(['https://example.com/a?b=1', 'mailto:owl@example.com', 'https://example.org/x']);
    for (const a of c.querySelectorAll('a')) {
      expect(a.getAttribute('target')).toBe('_blank');
      expect(a.getAttribute('rel')).toBe('noopener noreferrer');
    }
    expect(c.textContent).toContain('[js](javascript:alert(1))');
    expect(isSafeLinkUrl(' javascript:alert(1)')).toBe(false);
    expect(isSafeLinkUrl('\u0000https://x')).toBe(true);
  });

  it('never loads images: remote ones become links, others just their alt text', () => {
    const c = renderAnswer('![a cat](https://example.com/cat.png) ![local](owlery-image://image/abc) ![b64](data:image/png;base64,AAAA) [![nested](https://e.com/i.png)](https://e.com)');
    expect(c.querySelector('img')).toBeNull();
    const link = within(c).getByRole('link', { name: 'Image: a cat' });
    expect(link.getAttribute('href')).toBe('https://example.com/cat.png');
    expect(c.textContent).not.toContain('Image: local');
    expect(c.querySelectorAll('a a')).toHaveLength(0);
    expect(c.textContent).toContain('Image: nested');
  });

  it('shifts headings below the message heading', () => {
    const html = renderMarkdown('# Big\n\n### Small\n\n###### Tiny');
    expect(html).toContain('<h4 class="md-heading">Big</h4>');
    expect(html).toContain('<h6 class="md-heading">Small</h6>');
    expect(html).not.toContain('<h1');
  });

  it('gives code blocks a Copy button that copies the code', async () => {
    const user = userEvent.setup();
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true });
    const c = renderAnswer('Try:\n\n```python\nprint("<hi>")\n```\n');
    expect(c.querySelector('pre code.language-python')?.textContent).toBe('print("<hi>")\n');
    await user.click(within(c).getByRole('button', { name: 'Copy python code' }));
    expect(writeText).toHaveBeenCalledWith('print("<hi>")\n');
    await waitFor(() => expect(within(c).getByRole('button', { name: 'Copy python code' }).textContent).toBe('Copied'));
  });
});

describe('MessageItem', () => {
  function setup() {
    const main = fakeMain({
      'chat:regenerate': () => ({ requestId: 'r2', conversationId: 1, userMessageId: 1, assistantMessageId: 3 }),
      'conversations:get': () => ({ conversation: { id: 1, title: 't', createdAt: 0, updatedAt: 0, modelId: null, pinned: false, deletedAt: null, activeLeafId: 2 }, messages: [] }),
    });
    const announcer = new Announcer(0);
    const chat = new ChatManager(main.client, announcer);
    return { main, chat, announcer };
  }

  it('shows user text as plain text, never as Markdown or HTML', () => {
    const { chat } = setup();
    render(MessageItem, { props: { message: threadMessage(1, 'user', '**not bold** <i>x</i>'), chat, imageBase: 'http://127.0.0.1/', onview: vi.fn() } });
    const article = screen.getByRole('article', { name: 'You' });
    expect(article.querySelector('strong, i')).toBeNull();
    expect(article.textContent).toContain('**not bold** <i>x</i>');
    expect(within(article).getByRole('button', { name: 'Edit' })).toBeTruthy();
  });

  it('streams an answer: phase, growing text, then statistics and actions', async () => {
    const { chat } = setup();
    chat.conversationId = 1;
    chat.messages = [threadMessage(2, 'assistant', '', { status: 'partial' })];
    const started = { requestId: 'r1', conversationId: 1, userMessageId: 1, assistantMessageId: 2 };
    chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'encode-image' });
    // The stream is matched to its message once main says which request writes it.
    const stream = chat.streams.get('r1')!;
    stream.conversationId = started.conversationId;
    stream.assistantMessageId = started.assistantMessageId;
    render(MessageHost, { props: { chat } });
    const article = screen.getByRole('article', { name: 'Owlery' });
    expect(article.textContent).toContain('Looking at photo…');
    expect(within(article).queryByRole('button', { name: 'Regenerate' })).toBeNull();

    chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'generate' });
    chat.handleEvent({ type: 'delta', requestId: 'r1', seq: 0, text: 'A **grey' });
    await waitFor(() => expect(article.textContent).toContain('Writing…'));
    expect(article.textContent).toContain('A **grey');
    chat.handleEvent({ type: 'delta', requestId: 'r1', seq: 2, text: ' sea.' });
    chat.handleEvent({ type: 'delta', requestId: 'r1', seq: 1, text: ' owl** by the' });
    await waitFor(() => expect(article.querySelector('strong')?.textContent).toBe('grey owl'));
    expect(article.textContent).toContain('by the sea.');

    chat.handleEvent({
      type: 'done',
      requestId: 'r1',
      finish: 'eos',
      stats: stats(),
      message: { ...threadMessage(2, 'assistant', 'A **grey owl** by the sea.'), stats: stats() },
    });
    const answer = screen.getByRole('article', { name: 'Owlery' });
    await waitFor(() => expect(within(answer).getByRole('button', { name: 'Regenerate' })).toBeTruthy());
    expect(answer.textContent).not.toContain('Writing…');
    const figures = within(answer).getByRole('group', { name: 'Answer statistics' });
    const figure = (label: string) => within(figures).getByText(label).nextElementSibling?.textContent;
    expect(figure('Photo encoding')).toBe('340 ms');
    expect(figure('First token')).toBe('420 ms');
    expect(figure('Speed')).toBe('31 tok/s');
    expect(figure('Context')).toBe('120 of 4,096 tokens (3%)');
  });

  it('shows how long a phase has taken and, where the engine knows, how far it is', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance'] });
    try {
      const { chat } = setup();
      chat.conversationId = 1;
      chat.messages = [threadMessage(2, 'assistant', '', { status: 'partial' })];
      chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'encode-image', images: 3, progress: { done: 0, total: 3 } });
      const stream = chat.streams.get('r1')!;
      stream.conversationId = 1;
      stream.assistantMessageId = 2;
      render(MessageHost, { props: { chat } });
      const article = screen.getByRole('article', { name: 'Owlery' });
      const bar = within(article).getByRole('progressbar', { name: 'Looking at 3 photos…' });
      expect([bar.getAttribute('value'), bar.getAttribute('max')]).toEqual(['0', '3']);
      expect(article.querySelector('[data-elapsed]')).toBeNull();
      await vi.advanceTimersByTimeAsync(4000);
      expect(article.querySelector('[data-elapsed]')?.textContent).toBe('4 s');
      // The same phase moving on keeps its clock; a new phase starts its own.
      chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'encode-image', images: 3, progress: { done: 2, total: 3 } });
      await vi.advanceTimersByTimeAsync(1000);
      expect(within(article).getByRole('progressbar').getAttribute('value')).toBe('2');
      expect(article.querySelector('[data-elapsed]')?.textContent).toBe('5 s');
      chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'prefill', progress: { done: 256, total: 700 } });
      await vi.advanceTimersByTimeAsync(0);
      expect(article.textContent).toContain('Thinking…');
      expect(article.querySelector('[data-elapsed]')).toBeNull();
      expect(within(article).getByRole('progressbar', { name: 'Thinking…' }).getAttribute('aria-valuetext')).toBe('37%');
      chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'generate' });
      await vi.advanceTimersByTimeAsync(0);
      expect(within(article).queryByRole('progressbar')).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it('shows versions of a message and switches between them', async () => {
    const user = userEvent.setup();
    const { main, chat } = setup();
    main.handle({
      'conversations:select-branch': () => ({
        conversation: { id: 1, title: 't', createdAt: 0, updatedAt: 0, modelId: null, pinned: false, deletedAt: null, activeLeafId: 5 },
        messages: [threadMessage(5, 'assistant', 'first answer', { siblingIds: [5, 7], siblingIndex: 0 })],
      }),
    });
    chat.conversationId = 1;
    const message = threadMessage(7, 'assistant', 'second answer', { siblingIds: [5, 7], siblingIndex: 1 });
    render(MessageItem, { props: { message, chat, imageBase: 'http://127.0.0.1/', onview: vi.fn() } });
    const versions = screen.getByRole('group', { name: 'Answer versions' });
    expect(versions.textContent).toContain('2 / 2');
    expect(within(versions).getByRole('button', { name: 'Next version' })).toHaveProperty('disabled', true);
    await user.click(within(versions).getByRole('button', { name: 'Previous version' }));
    expect(main.callsTo('conversations:select-branch')).toEqual([{ messageId: 5 }]);
    await waitFor(() => expect(chat.messages[0]!.text).toBe('first answer'));
  });

  it('says how an answer ended when it did not finish', () => {
    const { chat } = setup();
    render(MessageItem, { props: { message: threadMessage(2, 'assistant', 'half', { status: 'cancelled' }), chat, imageBase: '', onview: vi.fn() } });
    expect(screen.getByText('Stopped before the end.')).toBeTruthy();
  });

  it('announces an answer in batches and at its end, not per token', async () => {
    const { main, chat, announcer } = setup();
    main.handle({
      'chat:send': () => ({ requestId: 'r9', conversationId: 1, userMessageId: 1, assistantMessageId: 2 }),
    });
    chat.conversationId = 1;
    await chat.send('hello');
    expect(announcer.message).toBe('Owlery is answering.');
    const said: string[] = [];
    $effectRootWatch(announcer, said);
    const tokens = 'The owl sits on a branch. It looks at the sea and'.split(/(?<= )/);
    tokens.forEach((t, i) => chat.handleEvent({ type: 'delta', requestId: 'r9', seq: i, text: t }));
    chat.handleEvent({ type: 'done', requestId: 'r9', finish: 'cancelled', stats: null, message: threadMessage(2, 'assistant', tokens.join(''), { status: 'cancelled' }) });
    await waitFor(() => expect(announcer.message).toContain('Answer stopped.'));
    // Far fewer announcements than tokens, and together they carry the whole answer.
    expect(said.length).toBeLessThan(tokens.length);
    expect(said.join(' ')).toContain('The owl sits on a branch.');
    expect(announcer.message).toContain('It looks at the sea and');
  });
});

/** Records each distinct message the announcer holds. */
function $effectRootWatch(announcer: Announcer, out: string[]): void {
  const say = announcer.say.bind(announcer);
  announcer.say = (text: string) => {
    say(text);
    out.push(announcer.message);
  };
}
