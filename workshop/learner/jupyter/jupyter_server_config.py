# Jupyter Server settings of careops/learner (workshop mode); the hub adds the rest through
# jupyterhub-singleuser (URL prefix, auth, the notebook folder).
c = get_config()  # noqa: F821 - provided by Jupyter's config loader

# Offline hospital networks: never ask the internet for updates or news (the notification
# settings in /opt/careops/share/jupyter/lab/settings/overrides.json say the same to the browser).
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.news_url = None
# The root file system is read-only; deleted files go nowhere rather than into a trash folder.
c.FileContentsManager.delete_to_trash = False
