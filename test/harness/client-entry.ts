/** Browser entry of the harness client (bundled by the server): installs `window.owlery`. */
import { installInPage } from './client.ts';

installInPage();
