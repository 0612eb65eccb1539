from django.urls import path

from bulletins import views

app_name = "bulletins"

urlpatterns = [
    path("", views.feed, name="feed"),
]
