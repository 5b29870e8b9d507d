// Submits the authorization answer to the application (response_mode=form_post).
document.getElementById("form-post").submit();
