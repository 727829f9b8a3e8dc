// CareOps Labs workshop mode: "Hand in" in every notebook's toolbar (and the command palette), and
// "My hand-ins and feedback". JupyterLab only saves and asks the learner's own server
// (POST <base>/careops/hand-in, careops.workshop.jupyter_extension); the server hands the saved file in to the
// hub's hand-in service with its own hub token, so who and when are the hub's and the server's to say.
import { Dialog, ICommandPalette, ToolbarButton, showDialog } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';

const HAND_IN = 'careops:hand-in';
const FEEDBACK = 'careops:feedback';

async function askServer(method, body) {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'careops', 'hand-in');
  const init = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    return { ok: false, data: { message: `your server did not answer (${error})`, fix: 'try again in a moment' } };
  }
  let data;
  try {
    data = await response.json();
  } catch (error) {
    data = { message: `your server answered HTTP ${response.status}` };
  }
  return { ok: response.ok, data };
}

async function handIn(panel, feedback) {
  if (!panel) {
    return;
  }
  await panel.context.ready;
  await panel.context.save();
  const answer = await askServer('POST', { path: panel.context.path });
  const text = answer.ok
    ? `${answer.data.message}. Your feedback appears under "My hand-ins and feedback" once the instructor returns it.`
    : `${answer.data.message}${answer.data.fix ? ` What to do: ${answer.data.fix}` : ''}`;
  if (answer.ok && answer.data.feedback_url) {
    feedback.url = answer.data.feedback_url;
  }
  await showDialog({
    title: answer.ok ? 'Handed in' : 'Not handed in',
    body: text,
    buttons: [Dialog.okButton({ label: 'OK' })]
  });
}

const plugin = {
  id: 'careops-handin:plugin',
  description: 'Hand in the open notebook to the workshop hub; open my feedback',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette],
  activate: (app, tracker, palette) => {
    const feedback = { url: '' };
    askServer('GET').then(answer => {
      if (answer.ok) {
        feedback.url = answer.data.feedback_url;
      }
    });
    app.commands.addCommand(HAND_IN, {
      label: 'Hand in',
      caption: 'Save this notebook and hand it in (as you, at the server\'s time)',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => handIn(tracker.currentWidget, feedback)
    });
    app.commands.addCommand(FEEDBACK, {
      label: 'My hand-ins and feedback',
      caption: 'Open the page with your hand-ins and your returned feedback',
      execute: () => window.open(feedback.url || '/services/hand-in/feedback/', '_blank', 'noopener')
    });
    if (palette) {
      palette.addItem({ command: HAND_IN, category: 'CareOps Labs' });
      palette.addItem({ command: FEEDBACK, category: 'CareOps Labs' });
    }
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: panel => {
        const button = new ToolbarButton({
          className: 'careops-handin-button',
          label: 'Hand in',
          tooltip: 'Save this notebook and hand it in to the workshop',
          onClick: () => {
            void handIn(panel, feedback);
          }
        });
        panel.toolbar.insertItem(10, 'careopsHandIn', button);
        return button;
      }
    });
  }
};

export default plugin;
