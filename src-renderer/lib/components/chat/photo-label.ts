/** How a photo of a message is named on screen. */
import type { MessageImage } from '../../../../src-shared/domain.ts';

/** The file name it was attached under, or `Pasted photo N` (its place in the message) for pastes. */
export function photoLabel(image: Pick<MessageImage, 'name'>, index: number): string {
  return image.name ?? `Pasted photo ${index + 1}`;
}
